"""What load balancers and monitoring ask a node: `/-/health`, `/-/ready`, `/-/metrics`."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from amphub import db
from amphub.http.access import require
from amphub.http.keys import HUB
from amphub.policy import Action
from amphub.services.readiness import unready_reasons


async def get_health(request: web.Request) -> web.Response:
    """The process is up and its loop answers; nothing else is checked."""
    return web.json_response({"status": "ok", "node": request.app[HUB].config.node})


async def get_ready(request: web.Request) -> web.Response:
    """200 when the database, object store and repositories answer; 503 with the reasons."""
    hub = request.app[HUB]
    reasons = await unready_reasons(hub)
    if reasons:
        body = {"status": "unready", "node": hub.config.node, "reasons": reasons}
        return web.json_response(body, status=503)
    return web.json_response({"status": "ready", "node": hub.config.node})


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus's text format; for administrators (scrape with an administrator's key)."""
    require(request, Action.READ_METRICS)
    hub = request.app[HUB]
    text = hub.metrics.exposition(await db.count_unfinished_tasks(hub.db), hub.db.pool_use())
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    """Every path of this module."""
    app.router.add_get("/-/health", get_health)
    app.router.add_get("/-/ready", get_ready)
    app.router.add_get("/-/metrics", get_metrics)

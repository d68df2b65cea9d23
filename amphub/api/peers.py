"""Zones and deploy targets: the peers an administrator registers for sync and deploy."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from amphub import db
from amphub.errors import BadRequest, NotFound
from amphub.http import keys
from amphub.http.access import require, user_name
from amphub.http.body import field, json_object
from amphub.policy import Action
from amphub.policy.names import check_peer_name, check_user_name
from amphub.policy.sealed import seal, unseal
from amphub.tasks.peer import Peer

MAX_SECRET = 4096


def zone_json(zone: db.Zone) -> dict[str, Any]:
    """A zone as the API shows it: never its key."""
    return {"name": zone.name, "url": zone.url, "user": zone.user, "created_at": zone.created_at}


async def why_silent(secret: bytes, zone: db.Zone) -> str | None:
    """None if the zone answers as its user with its key; otherwise why not."""
    peer = Peer(zone.url, zone.user, unseal(secret, zone.sealed_key))
    try:
        return await peer.check()
    finally:
        await peer.close()


def target_json(target: db.DeployTarget) -> dict[str, Any]:
    """A deploy target as the API shows it: never its secret."""
    return {"name": target.name, "url": target.url, "created_at": target.created_at}


def http_url(body: dict[str, Any]) -> str:
    """The body's `url`: an http(s) address with no credentials, query or fragment."""
    url = field(body, "url", str).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"url must be an http:// or https:// address, not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadRequest("url may not carry credentials, a query or a fragment")
    return url


def _secret(body: dict[str, Any], name: str) -> str:
    value = field(body, name, str)
    if not value or len(value) > MAX_SECRET:
        raise BadRequest(f"{name} must be 1 to {MAX_SECRET} characters")
    return value


async def get_zones(request: web.Request) -> web.Response:
    """Every zone, and whether it answers now (asked of all at once, briefly).

    With `check=0` the zones are not asked (`answers` and `no_answer` are null): for a
    form that only needs their names, which a zone that is down would hold up for seconds.
    """
    require(request, Action.MANAGE_PEERS)
    check = request.query.get("check", "1")
    if check not in ("0", "1"):
        raise BadRequest("check must be 0 or 1")
    hub = request.app[keys.HUB]
    zones = await db.ZONES.all(hub.db)
    if check == "0":
        listed = [{**zone_json(zone), "answers": None, "no_answer": None} for zone in zones]
        return web.json_response({"zones": listed})
    whys = await asyncio.gather(*(why_silent(hub.secret, zone) for zone in zones))
    listed = [
        {**zone_json(zone), "answers": why is None, "no_answer": why}
        for zone, why in zip(zones, whys, strict=True)
    ]
    return web.json_response({"zones": listed})


async def post_zone(request: web.Request) -> web.Response:
    """Register a peer amphub and the user to write there as."""
    who = require(request, Action.MANAGE_PEERS)
    body = await json_object(request, ("name", "url", "user", "key"))
    name = check_peer_name(field(body, "name", str))
    url, user = http_url(body), check_user_name(field(body, "user", str))
    sealed = seal(request.app[keys.HUB].secret, _secret(body, "key"))
    audit = db.Audit(user_name(who), "add_zone", target=name, detail=url)
    zone = await db.ZONES.add(
        request.app[keys.HUB].db, audit, name=name, url=url, user=user, sealed_key=sealed
    )
    return web.json_response(zone_json(zone), status=201)


async def remove_entry(
    request: web.Request, registry: db.Registry[Any], action: str
) -> web.Response:
    """Forget the entry the path names, as `action` in the audit log; 404 if there is none."""
    who = require(request, Action.MANAGE_PEERS)
    name = request.match_info["name"]
    audit = db.Audit(user_name(who), action, target=name)
    if not await registry.remove(request.app[keys.HUB].db, name, audit):
        raise NotFound(f"no {registry.noun} {name}")
    return web.Response(status=204)


async def delete_zone(request: web.Request) -> web.Response:
    """Forget a zone."""
    return await remove_entry(request, db.ZONES, "remove_zone")


async def get_targets(request: web.Request) -> web.Response:
    """Every deploy target."""
    require(request, Action.MANAGE_PEERS)
    targets = await db.DEPLOY_TARGETS.all(request.app[keys.HUB].db)
    return web.json_response({"targets": [target_json(t) for t in targets]})


async def post_target(request: web.Request) -> web.Response:
    """Register an inference service and the secret that signs what passes between us."""
    who = require(request, Action.MANAGE_PEERS)
    body = await json_object(request, ("name", "url", "secret"))
    name, url = check_peer_name(field(body, "name", str)), http_url(body)
    sealed = seal(request.app[keys.HUB].secret, _secret(body, "secret"))
    audit = db.Audit(user_name(who), "add_deploy_target", target=name, detail=url)
    target = await db.DEPLOY_TARGETS.add(
        request.app[keys.HUB].db, audit, name=name, url=url, sealed_secret=sealed
    )
    return web.json_response(target_json(target), status=201)


async def delete_target(request: web.Request) -> web.Response:
    """Forget a deploy target."""
    return await remove_entry(request, db.DEPLOY_TARGETS, "remove_deploy_target")


def add_routes(app: web.Application) -> None:
    """The zone and deploy target routes."""
    name = "{name:[a-z0-9._-]+}"
    app.router.add_get("/api/v1/zones", get_zones)
    app.router.add_post("/api/v1/zones", post_zone)
    app.router.add_delete(f"/api/v1/zones/{name}", delete_zone)
    app.router.add_get("/api/v1/deploy-targets", get_targets)
    app.router.add_post("/api/v1/deploy-targets", post_target)
    app.router.add_delete(f"/api/v1/deploy-targets/{name}", delete_target)

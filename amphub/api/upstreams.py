"""Upstream hubs (any server speaking the Hugging Face Hub API) and mirrors of their repos."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from amphub import db
from amphub.api.peers import MAX_SECRET, http_url, remove_entry
from amphub.api.tasks import task_json
from amphub.errors import BadRequest, NotFound
from amphub.http import keys
from amphub.http.access import actor, require, require_space, user_name
from amphub.http.body import field, json_object
from amphub.policy import Action
from amphub.policy.matrix import VISIBILITIES
from amphub.policy.names import check_peer_name
from amphub.policy.sealed import seal
from amphub.services.hub import Hub
from amphub.services.mirror import check_repo, check_revision, start_mirror
from amphub.services.mirror_schedule import (
    MirroredRepo,
    check_refresh_hours,
    mirrored_repos,
    schedule_refresh,
)


def upstream_json(upstream: db.Upstream) -> dict[str, Any]:
    """An upstream as the API shows it: never its token, only whether it has one."""
    return {
        "name": upstream.name,
        "url": upstream.url,
        "space": upstream.space_id,
        "token": upstream.sealed_token is not None,
        "visibility": upstream.visibility,
        "created_at": upstream.created_at,
    }


async def upstreams_answer(request: web.Request) -> dict[str, Any]:
    """Every upstream, as the API and the upstreams page show them."""
    require(request, Action.MANAGE_PEERS)
    upstreams = await db.UPSTREAMS.all(request.app[keys.HUB].db)
    return {"upstreams": [upstream_json(u) for u in upstreams]}


async def get_upstreams(request: web.Request) -> web.Response:
    """Every upstream."""
    return web.json_response(await upstreams_answer(request))


async def post_upstream(request: web.Request) -> web.Response:
    """Register an upstream and the existing space its mirrors go to."""
    who = require(request, Action.MANAGE_PEERS)
    hub = request.app[keys.HUB]
    body = await json_object(request, ("name", "url", "space", "token", "visibility"))
    name, url = check_peer_name(field(body, "name", str)), http_url(body)
    space_id = field(body, "space", str)
    if await db.get_space(hub.db, space_id) is None:
        raise BadRequest(f"no space {space_id}: create the mirror space first")
    token = field(body, "token", str, None)
    if token is not None and not 0 < len(token) <= MAX_SECRET:
        raise BadRequest(f"token must be 1 to {MAX_SECRET} characters")
    sealed = seal(hub.secret, token) if token else None
    # internal by default: a mirror holds only what the upstream published, and is a cache
    # for everyone signed in; private leaves it to the mirror space's and models' roles.
    visibility = field(body, "visibility", str, "internal")
    if visibility not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}")
    audit = db.Audit(user_name(who), "add_upstream", space_id, target=name, detail=url)
    upstream = await db.UPSTREAMS.add(
        hub.db,
        audit,
        name=name,
        url=url,
        space_id=space_id,
        sealed_token=sealed,
        visibility=visibility,
    )
    return web.json_response(upstream_json(upstream), status=201)


async def delete_upstream(request: web.Request) -> web.Response:
    """Forget an upstream and its refresh schedules; its mirrored models stay."""
    removed = await remove_entry(request, db.UPSTREAMS, "remove_upstream")
    await db.remove_mirror_schedules(request.app[keys.HUB].db, request.match_info["name"])
    return removed


async def _upstream(request: web.Request) -> db.Upstream:
    upstream = await db.UPSTREAMS.get(request.app[keys.HUB].db, request.match_info["name"])
    if upstream is None:
        require(request, Action.MANAGE_PEERS)  # only administrators learn which exist
        raise NotFound(f"no upstream {request.match_info['name']}")
    return upstream


async def post_mirror(request: web.Request) -> web.Response:
    """Queue the fetch of an upstream repo at a revision; refresh it every `refresh_hours`."""
    hub = request.app[keys.HUB]
    upstream = await _upstream(request)
    await require_space(request, upstream.space_id, Action.CREATE_MODEL)
    body = await json_object(request, ("repo", "revision", "refresh_hours"))
    repo = check_repo(field(body, "repo", str))
    revision = check_revision(field(body, "revision", str, "main"))
    hours = check_refresh_hours(field(body, "refresh_hours", int, None), revision)
    who = user_name(actor(request))
    task = await start_mirror(hub, upstream, repo, revision, who)
    if "refresh_hours" in body:  # absent: the schedule, if any, stays as it is
        await schedule_refresh(hub, upstream, repo, revision, hours, who)
    return web.json_response(task_json(task), status=202)


def mirrored_json(found: MirroredRepo) -> dict[str, Any]:
    """A mirrored repo with its refresh schedules and its latest fetches."""
    mirror, last = found.mirror, found.last_fetch
    return {
        "repo": mirror.repo,
        "model": f"{mirror.space_id}/{mirror.model_id}",
        "created_at": mirror.created_at,
        "schedules": [
            {"revision": s.revision, "refresh_hours": s.refresh_hours, "due_at": s.due_at}
            for s in found.schedules
        ],
        "last_refreshed_at": found.last_refreshed and found.last_refreshed.finished_at,
        "last_task": last and {"id": last.id, "status": last.status, "revision": last.ref},
    }


async def mirrors_json(hub: Hub, upstream: str) -> list[dict[str, Any]]:
    """The repos mirrored from an upstream, as the API and the upstreams page show them."""
    return [mirrored_json(found) for found in await mirrored_repos(hub, upstream)]


async def get_mirrors(request: web.Request) -> web.Response:
    """The repos mirrored from an upstream, their refresh schedules and last refreshes."""
    upstream = await _upstream(request)
    # For its mirror space's managers: they hold every permission on its models.
    await require_space(request, upstream.space_id, Action.AUTHORIZE_SPACE)
    mirrors = await mirrors_json(request.app[keys.HUB], upstream.name)
    return web.json_response({"mirrors": mirrors})


def add_routes(app: web.Application) -> None:
    """The upstream and mirror routes."""
    name = "{name:[a-z0-9._-]+}"
    app.router.add_get("/api/v1/upstreams", get_upstreams)
    app.router.add_post("/api/v1/upstreams", post_upstream)
    app.router.add_delete(f"/api/v1/upstreams/{name}", delete_upstream)
    app.router.add_get(f"/api/v1/upstreams/{name}/mirrors", get_mirrors)
    app.router.add_post(f"/api/v1/upstreams/{name}/mirrors", post_mirror)

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
from amphub.services.mirror import check_repo, check_revision, start_mirror


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


async def get_upstreams(request: web.Request) -> web.Response:
    """Every upstream."""
    require(request, Action.MANAGE_PEERS)
    upstreams = await db.UPSTREAMS.all(request.app[keys.HUB].db)
    return web.json_response({"upstreams": [upstream_json(u) for u in upstreams]})


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
    """Forget an upstream; its mirrored models stay."""
    return await remove_entry(request, db.UPSTREAMS, "remove_upstream")


async def post_mirror(request: web.Request) -> web.Response:
    """Queue the fetch of an upstream repo at a revision into the mirror space."""
    hub = request.app[keys.HUB]
    upstream = await db.UPSTREAMS.get(hub.db, request.match_info["name"])
    if upstream is None:
        require(request, Action.MANAGE_PEERS)  # only administrators learn which exist
        raise NotFound(f"no upstream {request.match_info['name']}")
    await require_space(request, upstream.space_id, Action.CREATE_MODEL)
    body = await json_object(request, ("repo", "revision"))
    repo = check_repo(field(body, "repo", str))
    revision = check_revision(field(body, "revision", str, "main"))
    who = user_name(actor(request))
    task = await start_mirror(hub, upstream, repo, revision, who)
    return web.json_response(task_json(task), status=202)


def add_routes(app: web.Application) -> None:
    """The upstream and mirror routes."""
    name = "{name:[a-z0-9._-]+}"
    app.router.add_get("/api/v1/upstreams", get_upstreams)
    app.router.add_post("/api/v1/upstreams", post_upstream)
    app.router.add_delete(f"/api/v1/upstreams/{name}", delete_upstream)
    app.router.add_post(f"/api/v1/upstreams/{name}/mirrors", post_mirror)

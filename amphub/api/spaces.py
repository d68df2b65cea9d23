"""Spaces: create, list and show, with usage computed from what is stored."""

from __future__ import annotations

from aiohttp import web

from amphub import db, keys
from amphub.access import SIGN_IN_NEEDED, actor, require, require_space, space_target
from amphub.api.body import field, json_object
from amphub.clock import parse_rfc3339, rfc3339
from amphub.errors import BadRequest, Conflict, Unauthorized
from amphub.names import check_display_name, check_space_id, space_id_from_name
from amphub.policy import Action, allowed, lifetime
from amphub.usage import space_usage

MAX_PERIOD = 100


def space_status(app: web.Application, space: db.Space) -> lifetime.Status:
    """The space's status now."""
    config = app[keys.CONFIG]
    expires = parse_rfc3339(space.expires_at) if space.expires_at else None
    return lifetime.status(expires, app[keys.CLOCK](), config.grace_days, config.retention_days)


async def space_json(request: web.Request, space: db.Space) -> dict:
    """A space as the API shows it, usage included."""
    usage = await space_usage(request.app, space.id)
    me = actor(request).name or ""
    return {
        "id": space.id,
        "name": space.name,
        "quota": space.quota,
        "used": usage.used,
        "models": sum(usage.models_by_owner.values()),
        "my_used": usage.by_owner.get(me, 0),
        "my_models": usage.models_by_owner.get(me, 0),
        "billing_mode": space.billing_mode,
        "status": space_status(request.app, space).value,
        "expires_at": space.expires_at,
        "creator": space.creator,
        "created_at": space.created_at,
    }


def _quota(app: web.Application, body: dict) -> int:
    unit = app[keys.CONFIG].quota_unit
    quota = field(body, "quota", int)
    if quota <= 0 or quota % unit:
        raise BadRequest(f"quota must be a positive multiple of the quota unit ({unit} bytes)")
    return quota


def _billing(app: web.Application, body: dict) -> tuple[str, str | None]:
    mode = field(body, "billing_mode", str)
    if mode not in lifetime.BILLING_MODES:
        raise BadRequest(f"billing_mode must be one of {', '.join(lifetime.BILLING_MODES)}")
    period = field(body, "period", int, 1)
    if not 1 <= period <= MAX_PERIOD:
        raise BadRequest(f"period must be 1 to {MAX_PERIOD}")
    expires = lifetime.expiration(mode, app[keys.CLOCK](), period)
    return mode, rfc3339(expires) if expires else None


async def post_spaces(request: web.Request) -> web.Response:
    """Create a space; the caller becomes its owner."""
    who = require(request, Action.CREATE_SPACE)
    body = await json_object(request)
    name = check_display_name(field(body, "name", str))
    quota = _quota(request.app, body)
    mode, expires_at = _billing(request.app, body)
    given = field(body, "id", str, None)
    candidates = (
        [check_space_id(given)]
        if given
        else [
            space_id_from_name(name),
            space_id_from_name(name, random_tail=True),
        ]
    )
    for space_id in candidates:
        try:
            space = await db.insert_space(
                request.app[keys.DB], space_id, name, quota, mode, expires_at, who.name
            )
            break
        except db.Conflict as exc:
            conflict = exc
    else:
        raise Conflict(str(conflict))
    return web.json_response(await space_json(request, space), status=201)


async def get_spaces(request: web.Request) -> web.Response:
    """The spaces the caller may use."""
    who = actor(request)
    if not who.signed_in:
        raise Unauthorized(SIGN_IN_NEEDED)
    spaces = [
        s
        for s in await db.list_spaces(request.app[keys.DB])
        if allowed(who, Action.USE_SPACE, space_target(s))
    ]
    return web.json_response({"spaces": [await space_json(request, s) for s in spaces]})


async def get_space(request: web.Request) -> web.Response:
    """One space."""
    space = await require_space(request, request.match_info["space"], Action.USE_SPACE)
    return web.json_response(await space_json(request, space))


def add_routes(app: web.Application) -> None:
    """The space routes."""
    # Space ids hold no '/', so the segment regex keeps path separators out.
    space = "/api/v1/spaces/{space:[a-z0-9-]+}"
    app.router.add_post("/api/v1/spaces", post_spaces)
    app.router.add_get("/api/v1/spaces", get_spaces)
    app.router.add_get(space, get_space)

"""Spaces: create, list, show, rename, quota, renewal, unsubscription and members."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from amphub import db
from amphub.api.paging import name_filter, requested_page
from amphub.clock import parse_rfc3339, rfc3339
from amphub.errors import BadRequest, Conflict, NotFound
from amphub.http import keys
from amphub.http.access import actor, require, require_space, user_name
from amphub.http.body import field, json_object
from amphub.policy import Action, lifetime
from amphub.policy.matrix import SPACE_ROLES
from amphub.policy.names import check_display_name, check_new_space_id, space_id_from_name
from amphub.services.hub import Hub
from amphub.services.quota import space_usage, space_used
from amphub.services.spaces import release_space, space_status, usable_spaces

MAX_PERIOD = 100
GRANTABLE_SPACE_ROLES = tuple(role for role in SPACE_ROLES if role != "owner")
PREPAID_ONLY = "quota changes and renewal apply to monthly and yearly spaces only"


async def space_json(request: web.Request, space: db.Space) -> dict[str, Any]:
    """A space as the API shows it, usage included."""
    usage = await space_usage(request.app[keys.HUB], space.id)
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
        "status": space_status(request.app[keys.HUB], space).value,
        "expires_at": space.expires_at,
        "creator": space.creator,
        "created_at": space.created_at,
    }


def _quota(hub: Hub, body: dict[str, Any]) -> int:
    unit = hub.config.quota_unit
    quota = field(body, "quota", int)
    if quota <= 0 or quota % unit:
        raise BadRequest(f"quota must be a positive multiple of the quota unit ({unit} bytes)")
    return quota


def _period(body: dict[str, Any]) -> int:
    period = field(body, "period", int, 1)
    if not 1 <= period <= MAX_PERIOD:
        raise BadRequest(f"period must be 1 to {MAX_PERIOD}")
    return period


def _billing(hub: Hub, body: dict[str, Any]) -> tuple[str, str | None]:
    mode = field(body, "billing_mode", str)
    if mode not in lifetime.BILLING_MODES:
        raise BadRequest(f"billing_mode must be one of {', '.join(lifetime.BILLING_MODES)}")
    expires = lifetime.expiration(mode, hub.clock(), _period(body))
    return mode, rfc3339(expires) if expires else None


def _changed(space: db.Space | None, space_id: str) -> db.Space:
    """The space as a change left it; None only if it was deleted meanwhile."""
    if space is None:
        raise NotFound(f"no space {space_id}")
    return space


def _prepaid(space: db.Space) -> None:
    if space.billing_mode == "pay_as_you_go":
        raise BadRequest(PREPAID_ONLY)


async def post_spaces(request: web.Request) -> web.Response:
    """Create a space; the caller becomes its owner."""
    who = require(request, Action.CREATE_SPACE)
    body = await json_object(request, ("name", "id", "quota", "billing_mode", "period"))
    name = check_display_name(field(body, "name", str))
    quota = _quota(request.app[keys.HUB], body)
    mode, expires_at = _billing(request.app[keys.HUB], body)
    given = field(body, "id", str, None)
    candidates = (
        [check_new_space_id(given)]
        if given
        else [space_id_from_name(name), space_id_from_name(name, random_tail=True)]
    )
    for space_id in candidates:
        try:
            space = await db.insert_space(
                request.app[keys.HUB].db, space_id, name, quota, mode, expires_at, user_name(who)
            )
            break
        except Conflict as exc:
            conflict = exc
    else:
        raise conflict
    return web.json_response(await space_json(request, space), status=201)


async def get_spaces(request: web.Request) -> web.Response:
    """The spaces the caller may use; released ones are gone from the list.

    With `?page=&per_page=` one page of them, the total and the quota unit; `?q=` keeps
    the spaces with the text in their id or name. Usage is summed for the answered
    spaces only, which is what makes a page of a long list quick.
    """
    return web.json_response(await spaces_answer(request))


async def spaces_answer(request: web.Request) -> dict[str, Any]:
    """What `get_spaces` answers: the spaces (or one page of them) with their usage."""
    who = actor(request)
    user_name(who)  # refuses an anonymous caller
    spaces = await usable_spaces(request.app[keys.HUB], who, name_filter(request))
    page = requested_page(request)
    if page is None:
        return {"spaces": [await space_json(request, s) for s in spaces]}
    shown = spaces[page.offset : page.offset + page.per_page]
    return {
        "spaces": [await space_json(request, s) for s in shown],
        "total": len(spaces),
        "quota_unit": request.app[keys.HUB].config.quota_unit,
    }


async def get_space(request: web.Request) -> web.Response:
    """One space."""
    space = await require_space(request, request.match_info["space"], Action.USE_SPACE)
    return web.json_response(await space_json(request, space))


async def patch_space(request: web.Request) -> web.Response:
    """Rename a space."""
    space = await require_space(request, request.match_info["space"], Action.AUTHORIZE_SPACE)
    body = await json_object(request, ("name",))
    name = check_display_name(field(body, "name", str))
    audit = db.Audit(user_name(actor(request)), "rename_space", space.id, detail=name)
    space = _changed(
        await db.update_space(request.app[keys.HUB].db, space.id, audit, name=name), space.id
    )
    return web.json_response(await space_json(request, space))


async def post_quota(request: web.Request) -> web.Response:
    """Set a prepaid space's quota, never below what it uses."""
    space = await require_space(request, request.match_info["space"], Action.AUTHORIZE_SPACE)
    _prepaid(space)
    quota = _quota(request.app[keys.HUB], await json_object(request, ("quota",)))
    used = await space_used(request.app[keys.HUB], space.id)
    if quota < used:
        raise BadRequest(f"quota {quota} is below the {used} bytes the space uses")
    audit = db.Audit(
        user_name(actor(request)), "change_quota", space.id, detail=f"{space.quota} -> {quota}"
    )
    space = _changed(
        await db.update_space(request.app[keys.HUB].db, space.id, audit, quota=quota), space.id
    )
    return web.json_response(await space_json(request, space))


async def post_renew(request: web.Request) -> web.Response:
    """Extend a prepaid space by periods, from its expiration or from now if that has passed."""
    space = await require_space(request, request.match_info["space"], Action.RENEW_SPACE)
    _prepaid(space)
    period = _period(await json_object(request, ("period",)))
    now = request.app[keys.HUB].clock()
    start = max(parse_rfc3339(space.expires_at), now) if space.expires_at else now
    until = lifetime.expiration(space.billing_mode, start, period)
    if until is None:  # pay-as-you-go, refused by _prepaid
        raise BadRequest(PREPAID_ONLY)
    expires = rfc3339(until)
    audit = db.Audit(user_name(actor(request)), "renew_space", space.id, detail=f"until {expires}")
    space = _changed(
        await db.update_space(request.app[keys.HUB].db, space.id, audit, expires_at=expires),
        space.id,
    )
    return web.json_response(await space_json(request, space))


async def post_unsubscribe(request: web.Request) -> web.Response:
    """Release a space now: its models and data are deleted by a background step."""
    space = await require_space(request, request.match_info["space"], Action.UNSUBSCRIBE_SPACE)
    if field(await json_object(request, ("confirm",)), "confirm", str, "") != space.id:
        raise BadRequest(f'type the space id to confirm: {{"confirm": "{space.id}"}}')
    audit = db.Audit(user_name(actor(request)), "unsubscribe_space", space.id)
    await db.mark_space_released(request.app[keys.HUB].db, space.id, audit)
    request.app[keys.HUB].background.spawn(
        release_space(request.app[keys.HUB], space.id), f"release {space.id}"
    )
    return web.json_response({"id": space.id, "status": lifetime.Status.RELEASED.value})


async def get_members(request: web.Request) -> web.Response:
    """The space's owner and granted members."""
    space = await require_space(request, request.match_info["space"], Action.USE_SPACE)
    return web.json_response({"members": await members_json(request, space)})


async def members_json(request: web.Request, space: db.Space) -> list[dict[str, str]]:
    """The space's owner, then its granted members, as `get_members` lists them."""
    granted = await db.list_space_members(request.app[keys.HUB].db, space.id)
    members = [{"user": space.creator, "role": "owner"}]
    members += [{"user": user, "role": role} for user, role in granted if user != space.creator]
    return members


async def put_member(request: web.Request) -> web.Response:
    """Grant or change a member's role."""
    space = await require_space(request, request.match_info["space"], Action.AUTHORIZE_SPACE)
    user = request.match_info["user"]
    role = field(await json_object(request, ("role",)), "role", str)
    if role not in GRANTABLE_SPACE_ROLES:
        raise BadRequest(f"role must be one of {', '.join(GRANTABLE_SPACE_ROLES)}")
    database = request.app[keys.HUB].db
    if await db.get_user(database, user) is None:
        raise NotFound(f"no user {user}")
    if user == space.creator:
        raise BadRequest("the owner's role is fixed")
    audit = db.Audit(
        user_name(actor(request)), "grant_space_role", space.id, target=user, detail=role
    )
    await db.set_space_member(database, space.id, user, role, audit)
    return web.json_response({"user": user, "role": role})


async def delete_member(request: web.Request) -> web.Response:
    """Revoke a member's role."""
    space = await require_space(request, request.match_info["space"], Action.AUTHORIZE_SPACE)
    user = request.match_info["user"]
    audit = db.Audit(user_name(actor(request)), "revoke_space_role", space.id, target=user)
    if not await db.delete_space_member(request.app[keys.HUB].db, space.id, user, audit):
        raise NotFound(f"{user} is not a member of space {space.id}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """The space routes."""
    # Space ids and user names hold no '/', so the segment regexes keep path separators out.
    space = "/api/v1/spaces/{space:[a-z0-9-]+}"
    member = space + "/members/{user:[a-z0-9._-]+}"
    app.router.add_post("/api/v1/spaces", post_spaces)
    app.router.add_get("/api/v1/spaces", get_spaces)
    app.router.add_get(space, get_space)
    app.router.add_patch(space, patch_space)
    app.router.add_post(space + "/quota", post_quota)
    app.router.add_post(space + "/renew", post_renew)
    app.router.add_post(space + "/unsubscribe", post_unsubscribe)
    app.router.add_get(space + "/members", get_members)
    app.router.add_put(member, put_member)
    app.router.add_delete(member, delete_member)

"""Spaces: create, list, show, rename, quota, renewal, unsubscription and members."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from amphub import db
from amphub.api.paging import name_filter, requested_page
from amphub.errors import BadRequest
from amphub.http import keys
from amphub.http.access import actor, require, require_space, user_name
from amphub.http.body import field, json_object
from amphub.policy import Action, lifetime
from amphub.services import space_changes
from amphub.services.quota import space_usage
from amphub.services.spaces import space_status, usable_spaces


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


async def post_spaces(request: web.Request) -> web.Response:
    """Create a space; the caller becomes its owner."""
    who = require(request, Action.CREATE_SPACE)
    body = await json_object(request, ("name", "id", "quota", "billing_mode", "period"))
    space = await space_changes.create_space(
        request.app[keys.HUB],
        user_name(who),
        field(body, "name", str),
        field(body, "quota", int),
        field(body, "billing_mode", str),
        field(body, "period", int, 1),
        field(body, "id", str, None),
    )
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
    name = field(await json_object(request, ("name",)), "name", str)
    by = user_name(actor(request))
    space = await space_changes.rename_space(request.app[keys.HUB], space, name, by)
    return web.json_response(await space_json(request, space))


async def post_quota(request: web.Request) -> web.Response:
    """Set a prepaid space's quota, never below what it uses."""
    space = await require_space(request, request.match_info["space"], Action.AUTHORIZE_SPACE)
    quota = field(await json_object(request, ("quota",)), "quota", int)
    by = user_name(actor(request))
    space = await space_changes.set_quota(request.app[keys.HUB], space, quota, by)
    return web.json_response(await space_json(request, space))


async def post_renew(request: web.Request) -> web.Response:
    """Extend a prepaid space by periods, from its expiration or from now if that has passed."""
    space = await require_space(request, request.match_info["space"], Action.RENEW_SPACE)
    period = field(await json_object(request, ("period",)), "period", int, 1)
    by = user_name(actor(request))
    space = await space_changes.renew_space(request.app[keys.HUB], space, period, by)
    return web.json_response(await space_json(request, space))


async def post_unsubscribe(request: web.Request) -> web.Response:
    """Release a space now: its models and data are deleted by a background step."""
    space = await require_space(request, request.match_info["space"], Action.UNSUBSCRIBE_SPACE)
    if field(await json_object(request, ("confirm",)), "confirm", str, "") != space.id:
        raise BadRequest(f'type the space id to confirm: {{"confirm": "{space.id}"}}')
    await space_changes.unsubscribe_space(request.app[keys.HUB], space, user_name(actor(request)))
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
    by = user_name(actor(request))
    await space_changes.grant_space_role(request.app[keys.HUB], space, user, role, by)
    return web.json_response({"user": user, "role": role})


async def delete_member(request: web.Request) -> web.Response:
    """Revoke a member's role."""
    space = await require_space(request, request.match_info["space"], Action.AUTHORIZE_SPACE)
    user = request.match_info["user"]
    by = user_name(actor(request))
    await space_changes.revoke_space_role(request.app[keys.HUB], space, user, by)
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

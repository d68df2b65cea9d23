"""Users and keys: /api/v1/me and the administrator's /api/v1/users."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from amphub import db
from amphub.api.paging import name_filter, requested_page
from amphub.errors import Forbidden, NotFound, Unauthorized
from amphub.http import keys
from amphub.http.access import SIGN_IN_NEEDED, actor, require, user_name
from amphub.http.body import field, json_object
from amphub.policy import Action
from amphub.services import accounts

USER_FLAGS = ("admin", "creator", "disabled")


def user_json(user: db.User) -> dict[str, Any]:
    """A user as the API shows it."""
    return {
        "name": user.name,
        "admin": user.admin,
        "creator": user.creator,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


async def get_me(request: web.Request) -> web.Response:
    """The caller."""
    user = await db.get_user(request.app[keys.HUB].db, user_name(actor(request)))
    if user is None:
        raise Unauthorized(SIGN_IN_NEEDED)
    return web.json_response(user_json(user))


async def new_own_key(request: web.Request) -> str:
    """A new key for the caller (never from a token); the old one stops working at once."""
    name = user_name(actor(request))
    if keys.TOKEN in request:
        raise Forbidden("a token cannot replace a key; sign in with your key")
    key = await accounts.regenerate_key(request.app[keys.HUB].db, name, by=name)
    if key is None:
        raise Unauthorized("your user no longer exists")
    return key


async def post_me_key(request: web.Request) -> web.Response:
    """A new key for the caller; the old one stops working at once."""
    return web.json_response({"key": await new_own_key(request)})


async def get_users(request: web.Request) -> web.Response:
    """Every user; or with `?page=&per_page=` one page of them and the total (`?q=` filters)."""
    require(request, Action.MANAGE_USERS)
    database = request.app[keys.HUB].db
    page, contains = requested_page(request), name_filter(request)
    if page is None:
        users = await db.list_users(database, name_contains=contains)
        return web.json_response({"users": [user_json(u) for u in users]})
    users = await db.list_users(
        database, name_contains=contains, limit=page.per_page, offset=page.offset
    )
    total = await db.count_users(database, name_contains=contains)
    return web.json_response({"users": [user_json(u) for u in users], "total": total})


async def post_users(request: web.Request) -> web.Response:
    """Create a user; the answer carries its key, shown this once."""
    who = require(request, Action.MANAGE_USERS)
    body = await json_object(request, ("name", "admin", "creator"))
    user, key = await accounts.create_user(
        request.app[keys.HUB].db,
        field(body, "name", str),
        by=user_name(who),
        admin=field(body, "admin", bool, False),
        creator=field(body, "creator", bool, False),
    )
    return web.json_response({**user_json(user), "key": key}, status=201)


async def patch_user(request: web.Request) -> web.Response:
    """Grant or revoke the global roles, disable or enable a user."""
    who = require(request, Action.MANAGE_USERS)
    body = await json_object(request, USER_FLAGS)
    flags = {name: field(body, name, bool, None) for name in USER_FLAGS}
    user = await accounts.change_user(
        request.app[keys.HUB].db, request.match_info["name"], by=user_name(who), **flags
    )
    if user is None:
        raise NotFound(f"no user {request.match_info['name']}")
    return web.json_response(user_json(user))


async def post_user_key(request: web.Request) -> web.Response:
    """A new key for a user; the old one stops working at once."""
    who = require(request, Action.MANAGE_USERS)
    key = await accounts.regenerate_key(
        request.app[keys.HUB].db, request.match_info["name"], by=user_name(who)
    )
    if key is None:
        raise NotFound(f"no user {request.match_info['name']}")
    return web.json_response({"key": key})


def add_routes(app: web.Application) -> None:
    """The user routes."""
    # User names hold no '/', so the segment regex keeps path separators out.
    user = "/api/v1/users/{name:[a-z0-9._-]+}"
    app.router.add_get("/api/v1/me", get_me)
    app.router.add_post("/api/v1/me/key", post_me_key)
    app.router.add_get("/api/v1/users", get_users)
    app.router.add_post("/api/v1/users", post_users)
    app.router.add_patch(user, patch_user)
    app.router.add_post(user + "/key", post_user_key)

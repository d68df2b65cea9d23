"""The LFS file-locking API: create, list, verify (ours / theirs) and unlock."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from amphub import db
from amphub.errors import BadRequest, Forbidden, NotFound
from amphub.http import keys
from amphub.http.access import actor, require_model, user_name
from amphub.http.body import field, json_object
from amphub.http.urls import model_ids
from amphub.lfs.transfer import lfs_json
from amphub.policy import Action

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def lock_json(lock: db.LfsLock) -> dict[str, Any]:
    """A lock as the LFS API shows it."""
    return {
        "id": str(lock.id),
        "path": lock.path,
        "locked_at": lock.locked_at,
        "owner": {"name": lock.owner},
    }


def _ref_name(body: dict[str, Any]) -> str | None:
    ref = field(body, "ref", dict, {})
    name = ref.get("name")
    return name if isinstance(name, str) else None


def _page(cursor: Any, limit: Any) -> tuple[int, int]:
    """Cursor and limit as given: strings from a query, any JSON value from a body."""
    try:
        after = int(cursor) if cursor not in (None, "") else 0
        size = int(limit) if limit not in (None, "") else DEFAULT_LIMIT
    except (TypeError, ValueError):
        raise BadRequest("cursor and limit must be whole numbers") from None
    return after, max(1, min(size, MAX_LIMIT))


def _next_cursor(locks: list[db.LfsLock], limit: int) -> dict[str, Any]:
    return {"next_cursor": str(locks[-1].id)} if len(locks) == limit else {}


async def post_lock(request: web.Request) -> web.Response:
    """Lock a path for the caller."""
    space_id, model_id = model_ids(request)
    await require_model(request, space_id, model_id, Action.WRITE_FILES)
    body = await json_object(request)
    path = field(body, "path", str)
    if not path or len(path) > 4096:
        raise BadRequest("path must be 1 to 4096 characters")
    database = request.app[keys.HUB].db
    owner = user_name(actor(request))
    try:
        lock = await db.insert_lock(database, space_id, model_id, path, _ref_name(body), owner)
    except db.Conflict:
        existing = await db.find_lock(database, space_id, model_id, path)
        if existing is None:  # unlocked in between: the client may simply try again
            raise BadRequest(f"{path} was being unlocked; try again") from None
        return lfs_json({"lock": lock_json(existing), "message": "already created lock"}, 409)
    return lfs_json({"lock": lock_json(lock)}, 201)


async def get_locks(request: web.Request) -> web.Response:
    """List locks, by path or id, a page at a time."""
    space_id, model_id = model_ids(request)
    await require_model(request, space_id, model_id, Action.READ_FILES)
    query = request.query
    after, limit = _page(query.get("cursor"), query.get("limit"))
    lock_id = query.get("id")
    if lock_id is not None and not lock_id.isdigit():
        return lfs_json({"locks": []})
    locks = await db.list_locks(
        request.app[keys.HUB].db,
        space_id,
        model_id,
        path=query.get("path"),
        lock_id=int(lock_id) if lock_id else None,
        after_id=after,
        limit=limit,
    )
    return lfs_json({"locks": [lock_json(lock) for lock in locks], **_next_cursor(locks, limit)})


async def post_verify_locks(request: web.Request) -> web.Response:
    """The locks of a model split into the caller's and everyone else's."""
    space_id, model_id = model_ids(request)
    await require_model(request, space_id, model_id, Action.WRITE_FILES)
    body = await json_object(request)
    after, limit = _page(body.get("cursor"), body.get("limit"))
    locks = await db.list_locks(
        request.app[keys.HUB].db, space_id, model_id, after_id=after, limit=limit
    )
    me = request[keys.ACTOR].name
    return lfs_json(
        {
            "ours": [lock_json(lock) for lock in locks if lock.owner == me],
            "theirs": [lock_json(lock) for lock in locks if lock.owner != me],
            **_next_cursor(locks, limit),
        }
    )


async def post_unlock(request: web.Request) -> web.Response:
    """Remove a lock: one's own, or anyone's with force for maintainers and owners."""
    space_id, model_id = model_ids(request)
    access = await require_model(request, space_id, model_id, Action.WRITE_FILES)
    body = await json_object(request)
    force = field(body, "force", bool, False)
    database = request.app[keys.HUB].db
    lock_id = int(request.match_info["id"])
    matches = await db.list_locks(database, space_id, model_id, lock_id=lock_id, limit=1)
    if not matches:
        raise NotFound(f"no lock {lock_id}")
    lock = matches[0]
    if lock.owner != request[keys.ACTOR].name:
        if not force:
            raise Forbidden(f"{lock.path} is locked by {lock.owner}; unlock it with --force")
        if not access.may(Action.EDIT):
            raise Forbidden("only maintainers and owners may unlock another user's lock")
    if not await db.delete_lock(database, space_id, model_id, lock.id):
        raise NotFound(f"no lock {lock_id}")
    return lfs_json({"lock": lock_json(lock)})

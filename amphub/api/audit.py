"""The audit log: every administrator sees all of it, a space's owner that space's part."""

from __future__ import annotations

from aiohttp import web

from amphub import db
from amphub.errors import BadRequest, Forbidden, Unauthorized
from amphub.http import keys
from amphub.http.access import SIGN_IN_NEEDED, actor, require_space
from amphub.policy import Action

MAX_LIMIT = 1000


async def get_audit(request: web.Request) -> web.Response:
    """Entries in order, `?space=` for one space, `?after=SEQ&limit=N` to page."""
    who = actor(request)
    space_id = request.query.get("space")
    if space_id:
        space = await require_space(request, space_id, Action.USE_SPACE)
        if not who.admin and space.creator != who.name:
            raise Forbidden(f"only the owner of space {space_id} may read its audit log")
    elif not who.signed_in:
        raise Unauthorized(SIGN_IN_NEEDED)
    elif not who.admin:
        raise Forbidden("only administrators may read the whole audit log; add ?space=")
    try:
        after = int(request.query.get("after", "0"))
        limit = min(int(request.query.get("limit", "100")), MAX_LIMIT)
    except ValueError:
        raise BadRequest("after and limit must be whole numbers") from None
    if limit < 1 or after < 0:
        raise BadRequest(f"limit is 1 to {MAX_LIMIT}; after is 0 or more")
    entries = await db.list_audit(
        request.app[keys.HUB].db, space_id=space_id, after=after, limit=limit
    )
    return web.json_response(
        {
            "entries": [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "space": e.space_id,
                    "model": e.model_id,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in entries
            ]
        }
    )


def add_routes(app: web.Application) -> None:
    """The audit route."""
    app.router.add_get("/api/v1/audit", get_audit)

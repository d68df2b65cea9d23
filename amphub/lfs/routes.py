"""Every LFS path, under the model's remote URL + /info/lfs."""

from __future__ import annotations

from aiohttp import web

from amphub.lfs import locks, transfer


def add_routes(app: web.Application) -> None:
    """The batch API, object transfer and locks; `.git` at the end of the model is optional."""
    # Both segments exclude '/' and '%', so no id can carry a path separator; an oid is
    # 64 hex characters and a lock id digits.
    lfs = "/{space:[A-Za-z0-9._-]+}/{model:[A-Za-z0-9._-]+}/info/lfs"
    app.router.add_post(lfs + "/objects/batch", transfer.post_batch)
    app.router.add_put(lfs + "/objects/{oid:[0-9a-f]{64}}", transfer.put_object)
    app.router.add_get(lfs + "/objects/{oid:[0-9a-f]{64}}", transfer.get_object)
    app.router.add_post(lfs + "/verify", transfer.post_verify)
    app.router.add_post(lfs + "/locks", locks.post_lock)
    app.router.add_get(lfs + "/locks", locks.get_locks)
    app.router.add_post(lfs + "/locks/verify", locks.post_verify_locks)
    app.router.add_post(lfs + "/locks/{id:[0-9]{1,18}}/unlock", locks.post_unlock)

"""Removing objects that no model references any more, safely against concurrent uploads."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from amphub import db
from amphub.services.hub import Hub


async def collect(hub: Hub, oids: Iterable[str]) -> int:
    """Delete each object no model links; returns how many were removed.

    Under the object's lock, which an upload holds while it moves its file into place.
    An upload claims the object before that and until it is linked, and a claimed object
    is left alone: either the removal comes first and the upload stores the object anew,
    or the object stays until the upload links it (an upload of an object stored already
    keeps the file it found).
    """
    database = hub.db
    store = hub.objects
    claims = hub.claims
    removed = 0
    for oid in oids:
        async with hub.locks.hold(("object", oid)):
            if claims.claimed(oid):
                continue
            if await db.forget_object_if_unreferenced(database, oid):
                await hub.run_blocking(partial(store.remove, oid))
                removed += 1
    return removed


async def collect_unreferenced(hub: Hub) -> int:
    """Remove every stored object that no model links (after a crash or a deletion)."""
    return await collect(hub, await db.unreferenced_oids(hub.db))

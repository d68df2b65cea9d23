"""Reading a model's objects as the disk has them, and removing those no model references."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from amphub import db
from amphub.services.hub import Hub


async def stored_object(hub: Hub, space_id: str, model_id: str, oid: str) -> Path | None:
    """Where a model's object can be read: linked to it, and stored with its size.

    A file of another size is damaged: it is moved aside, not served, and the next push of
    the object stores it again (the batch API asks for what the disk lacks).
    """
    linked = await db.linked_object_sizes(hub.db, space_id, model_id, [oid])
    if oid not in linked:
        return None
    path = hub.objects.path(oid)
    if await hub.run_blocking(partial(_size, path)) == linked[oid]:
        return path
    async with hub.locks.hold(("object", oid)):  # an upload may be putting it right
        size = await hub.run_blocking(partial(_size, path))
        if size == linked[oid]:
            return path
        if size is not None:
            await hub.run_blocking(partial(hub.objects.quarantine, oid))
    return None


async def intact_object(hub: Hub, oid: str, size: int) -> bool:
    """Whether a stored object's bytes hash to its oid (all read); a damaged one is moved aside."""
    if await hub.run_blocking(partial(hub.objects.intact, oid, size)):
        return True
    async with hub.locks.hold(("object", oid)):  # an upload may be putting it right
        if await hub.run_blocking(partial(hub.objects.intact, oid, size)):
            return True
        await hub.run_blocking(partial(hub.objects.quarantine, oid))
    return False


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


async def collect(hub: Hub, oids: Iterable[str]) -> int:
    """Delete each object no model links; returns how many were removed.

    Under the object's lock, which an upload holds while it moves its file into place.
    An upload claims the object before that and until it is linked, and a claimed object
    is left alone: either the removal comes first and the upload stores the object anew,
    or the object stays until the upload links it.
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

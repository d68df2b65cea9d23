"""Reading a model's objects as the store has them, and removing those no model references."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from amphub import db
from amphub.services.background import every
from amphub.services.hub import Hub
from amphub.services.leases import claimed
from amphub.services.locks import one_node_at_a_time

# How often objects no model links are looked for.
COLLECT_SECONDS = 600


async def stored_object(hub: Hub, space_id: str, model_id: str, oid: str) -> int | None:
    """The size of a model's object, if it is linked to the model and stored with that size.

    An object of another size is damaged: it is moved aside, not served, and the next push
    of the object stores it again (the batch API asks for what the store lacks).
    """
    linked = await db.linked_object_sizes(hub.db, space_id, model_id, [oid])
    if oid not in linked:
        return None
    if await hub.objects.size(oid) == linked[oid]:
        return linked[oid]
    async with hub.locks.hold(("object", oid)):  # an upload may be putting it right
        size = await hub.objects.size(oid)
        if size == linked[oid]:
            return size
        if size is not None:
            await hub.objects.quarantine(oid)
    return None


async def intact_object(hub: Hub, oid: str, size: int) -> bool:
    """Whether a stored object's bytes hash to its oid (all read); a damaged one is moved aside."""
    if await hub.objects.intact(oid, size):
        return True
    async with hub.locks.hold(("object", oid)):  # an upload may be putting it right
        if await hub.objects.intact(oid, size):
            return True
        await hub.objects.quarantine(oid)
    return False


@contextlib.asynccontextmanager
async def intact_object_file(hub: Hub, oid: str, size: int) -> AsyncIterator[Path | None]:
    """A file of the object, its bytes proven to hash to its oid, for the scanner's processes.

    The store's own file where it is a local disk, once hashed; else a copy streamed into
    scratch space and hashed on the way (the bucket is read once), removed afterwards.
    None if the object is damaged: it is moved aside, as `intact_object` does.
    """
    own = hub.objects.file(oid)
    if own is not None:
        yield own if await intact_object(hub, oid, size) else None
        return
    fd, name = tempfile.mkstemp(dir=hub.objects.tmp, prefix="object-")
    os.close(fd)
    copy = Path(name)
    try:
        intact = await _copy_hashed(hub, oid, size, copy)
        if not intact and await intact_object(hub, oid, size):  # an upload put it right
            intact = await _copy_hashed(hub, oid, size, copy)
        yield copy if intact else None
    finally:
        copy.unlink(missing_ok=True)


async def _copy_hashed(hub: Hub, oid: str, size: int, path: Path) -> bool:
    """Stream the object into `path`, hashing it; whether it had `size` bytes hashing to `oid`."""
    digest = hashlib.sha256()
    written = 0
    with path.open("wb") as copy:
        async for piece in hub.objects.read(oid):
            written += len(piece)
            await hub.run_blocking(partial(_write_hashed, copy, digest, piece))
    return written == size and digest.hexdigest() == oid


def _write_hashed(copy: BinaryIO, digest: Any, piece: bytes) -> None:
    digest.update(piece)
    copy.write(piece)


async def collect(hub: Hub, oids: Iterable[str]) -> int:
    """Delete each object no model links; returns how many were removed.

    Under the object's lock, which an upload holds while it moves its file into place.
    An upload claims the object before that and until it is linked, and a claimed object
    is left alone: either the removal comes first and the upload stores the object anew,
    or the object stays until the upload links it; claims are rows every node sees. A
    direct upload to the store claims nothing until its batch call adopts it: an object
    written within the grace period is left for a later sweep, so that the upload that
    wrote it has that long to link it.
    """
    database = hub.db
    store = hub.objects
    grace = hub.config.object_grace_seconds
    removed = 0
    for oid in oids:
        async with hub.locks.hold(("object", oid)):
            if await claimed(hub, oid):
                continue
            if grace:
                age = await store.written_ago(oid)
                if age is not None and age < grace:
                    continue
            if await db.forget_object_if_unreferenced(database, oid):
                await store.remove(oid)
                removed += 1
    return removed


async def collect_unreferenced(hub: Hub) -> int:
    """Remove every stored object that no model links (after a crash or a deletion)."""
    return await collect(hub, await db.unreferenced_oids(hub.db))


def collecting(hub: Hub) -> contextlib.AbstractAsyncContextManager[None]:
    """Remove unreferenced objects at start and then every few minutes (past their grace)."""
    sweep = one_node_at_a_time(hub.locks, "objects", lambda: collect_unreferenced(hub))
    return every(COLLECT_SECONDS, sweep, "collecting objects")

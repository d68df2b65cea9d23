"""Space usage and the quota: what is stored, what uploads in flight reserved, and the check.

Usage counts each LFS object once per space plus the size of the space's git repositories.
Every way of adding bytes (an LFS or Xet upload, a git push, a Hugging Face commit) checks
against the room this module computes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from amphub import db
from amphub.errors import QuotaExceeded
from amphub.services.hub import Hub
from amphub.services.leases import lease_end
from amphub.services.locks import LinkBatch
from amphub.units import human_size

# How long a batch call's reservation waits for its upload to start; an upload that starts
# later checks the quota again, and one in progress holds its reservation until it ends.
RESERVATION_SECONDS = 300


@dataclass(frozen=True)
class Usage:
    """Bytes used in a space, and per owner of models (for the caller's own share)."""

    used: int
    by_owner: dict[str, int]
    models_by_owner: dict[str, int]


async def space_usage(hub: Hub, space_id: str) -> Usage:
    """Computed from what is stored, never kept as a separate number."""
    models, git_sizes = await _repositories(hub, space_id)
    lfs_total = await db.space_lfs_bytes(hub.db, space_id)
    by_owner = await db.space_lfs_bytes_by_owner(hub.db, space_id)
    models_by_owner: dict[str, int] = {}
    for model in models:
        by_owner[model.owner] = by_owner.get(model.owner, 0) + git_sizes[model.id]
        models_by_owner[model.owner] = models_by_owner.get(model.owner, 0) + 1
    return Usage(lfs_total + sum(git_sizes.values()), by_owner, models_by_owner)


async def space_used(hub: Hub, space_id: str) -> int:
    """Bytes used in a space, without the share of each owner (which a quota check needs not)."""
    _, git_sizes = await _repositories(hub, space_id)
    return await db.space_lfs_bytes(hub.db, space_id) + sum(git_sizes.values())


async def _repositories(hub: Hub, space_id: str) -> tuple[list[db.Model], dict[str, int]]:
    """The models of a space, and the size of each one's git repository."""
    models = await db.list_space_models(hub.db, space_id)
    repos = hub.repos
    paths = {m.id: repos.path(space_id, m.id) for m in models}
    return models, await hub.run_blocking(lambda: {k: repos.size(p) for k, p in paths.items()})


async def reserve_quota(hub: Hub, space: db.Space, sizes: dict[str, int]) -> None:
    """Reserve room for new objects, or refuse with QuotaExceeded before any byte is sent.

    Objects some model of the space holds already cost nothing. The check and the
    reservation happen under the space's lock, so two uploads cannot pass it together.
    """
    async with hub.locks.hold(("quota", space.id)):
        counted = await db.oids_counted_in_space(hub.db, space.id, list(sizes))
        new = {oid: size for oid, size in sizes.items() if oid not in counted}
        if not new:
            return
        used = await _used_and_reserved(hub, space.id, excluding=set(new))
        asked = sum(new.values())
        if used + asked > space.quota:
            raise QuotaExceeded(quota_message(space.id, used, space.quota, asked))
        await db.reserve(hub.db, space.id, new, lease_end(hub, RESERVATION_SECONDS))


async def _used_and_reserved(hub: Hub, space_id: str, excluding: set[str]) -> int:
    """Bytes used in the space plus those reserved (on any node) for objects it lacks.

    An object linked while its reservation still stands is counted once, as stored.
    Reservations of `excluding` are left out.
    """
    _, git_sizes = await _repositories(hub, space_id)
    stored, reserved = await db.stored_and_reserved_bytes(hub.db, space_id, excluding)
    return stored + reserved + sum(git_sizes.values())


async def release_reserved(hub: Hub, space_id: str, oid: str) -> None:
    """Give back the reservation of one object."""
    await db.release_reservations(hub.db, space_id, [oid])


async def link_reserved(hub: Hub, space_id: str, model_id: str, oid: str, size: int) -> None:
    """Link a stored object to a model, then give back its reservation.

    A quota check reads the stored and the reserved bytes at one instant, so the link
    coming first is enough for it never to miss the object. Objects stored while the
    space's quota lock is held wait in one batch per model and are linked together, in one
    statement: the database takes one write at a time. A background task links the batch
    and gives back its reservations, even if the uploads that wait for it go away. When
    nothing holds the lock and the database takes the write at once, the object is linked
    right here.
    """
    batches = hub.link_batches
    quiet = (space_id, model_id) not in batches and not hub.locks.busy(("quota", space_id))
    if quiet:
        try:
            linked = db.link_objects_at_once(hub.db, space_id, model_id, {oid: size})
        except BaseException:
            await release_reserved(hub, space_id, oid)
            raise
        if linked:
            await release_reserved(hub, space_id, oid)
            return
    batch = batches.get((space_id, model_id))
    if batch is None:
        sizes: dict[str, int] = {}
        linking = hub.background.spawn(
            _link_batch(hub, space_id, model_id, sizes), f"link objects to {space_id}/{model_id}"
        )
        batch = batches[(space_id, model_id)] = LinkBatch(sizes, linking)
    batch.sizes[oid] = size
    await asyncio.shield(batch.linked)


async def _link_batch(hub: Hub, space_id: str, model_id: str, sizes: dict[str, int]) -> None:
    async with hub.locks.hold(("quota", space_id)):
        del hub.link_batches[(space_id, model_id)]  # later objects wait for the next
        try:
            await db.link_objects(hub.db, space_id, model_id, sizes)
        finally:
            await db.release_reservations(hub.db, space_id, list(sizes))


async def room_left(hub: Hub, space: db.Space) -> int:
    """Bytes the space can still take, after usage and reservations."""
    async with hub.locks.hold(("quota", space.id)):
        used = await _used_and_reserved(hub, space.id, excluding=set())
    return space.quota - used


async def push_room(hub: Hub, space: db.Space) -> tuple[int, str]:
    """Bytes a push may still add to the space, and the sentence that refuses a bigger one.

    Every way of moving refs (git push, a Hugging Face commit) checks against this.
    """
    room = await room_left(hub, space)
    return room, "push refused: " + push_quota_message(space.id, space.quota - room, space.quota)


def quota_message(space_id: str, used: int, quota: int, asked: int) -> str:
    """The sentence a refused upload or push shows."""
    return (
        f"space {space_id} is over its quota: {human_size(used)} used of"
        f" {human_size(quota)}, and this needs {human_size(asked)} more;"
        " ask the space owner to raise the quota or delete unused models"
    )


def push_quota_message(space_id: str, used: int, quota: int) -> str:
    """The sentence a push whose pack does not fit shows."""
    left = max(quota - used, 0)
    return (
        f"space {space_id} is over its quota: {human_size(used)} used of {human_size(quota)},"
        f" and this push needs more than the {human_size(left)} left;"
        " ask the space owner to raise the quota or delete unused models"
    )

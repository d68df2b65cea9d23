"""What a space uses: each LFS object once, plus its git repositories; and the quota check."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from amphub import db, keys
from amphub.errors import QuotaExceeded
from amphub.git.bridge import run_blocking
from amphub.git.repos import repo_path, repo_size
from amphub.quota import LinkBatch, quota_message

# How long a batch call's reservation waits for its upload to start; an upload that starts
# later checks the quota again, and one in progress keeps its reservation until it ends.
RESERVATION_SECONDS = 300
IN_FLIGHT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Usage:
    """Bytes used in a space, and per owner of models (for the caller's own share)."""

    used: int
    by_owner: dict[str, int]
    models_by_owner: dict[str, int]


async def space_usage(app: web.Application, space_id: str) -> Usage:
    """Computed from what is stored, never kept as a separate number."""
    models, git_sizes = await _repositories(app, space_id)
    lfs_total = await db.space_lfs_bytes(app[keys.DB], space_id)
    by_owner = await db.space_lfs_bytes_by_owner(app[keys.DB], space_id)
    models_by_owner: dict[str, int] = {}
    for model in models:
        by_owner[model.owner] = by_owner.get(model.owner, 0) + git_sizes[model.id]
        models_by_owner[model.owner] = models_by_owner.get(model.owner, 0) + 1
    return Usage(lfs_total + sum(git_sizes.values()), by_owner, models_by_owner)


async def space_used(app: web.Application, space_id: str) -> int:
    """Bytes used in a space, without the share of each owner (which a quota check needs not)."""
    _, git_sizes = await _repositories(app, space_id)
    return await db.space_lfs_bytes(app[keys.DB], space_id) + sum(git_sizes.values())


async def _repositories(
    app: web.Application, space_id: str
) -> tuple[list[db.Model], dict[str, int]]:
    """The models of a space, and the size of each one's git repository."""
    models = await db.list_space_models(app[keys.DB], space_id)
    config = app[keys.CONFIG]
    paths = {m.id: repo_path(config, space_id, m.id) for m in models}
    return models, await run_blocking(app, lambda: {k: repo_size(p) for k, p in paths.items()})


async def reserve_quota(app: web.Application, space: db.Space, sizes: dict[str, int]) -> None:
    """Reserve room for new objects, or refuse with QuotaExceeded before any byte is sent.

    Objects some model of the space holds already cost nothing. The check and the
    reservation happen under the space's lock, so two uploads cannot pass it together.
    """
    reservations = app[keys.RESERVATIONS]
    async with app[keys.OBJECT_LOCKS].hold(("quota", space.id)):
        counted = await db.oids_counted_in_space(app[keys.DB], space.id, list(sizes))
        new = {oid: size for oid, size in sizes.items() if oid not in counted}
        if not new:
            return
        used = await space_used(app, space.id)
        used += await _reserved_not_stored(app, space.id, excluding=set(new))
        asked = sum(new.values())
        if used + asked > space.quota:
            raise QuotaExceeded(quota_message(space.id, used, space.quota, asked))
        reservations.reserve(space.id, new, RESERVATION_SECONDS)


async def _reserved_not_stored(app: web.Application, space_id: str, excluding: set[str]) -> int:
    """Bytes reserved in the space for objects it does not count as stored already.

    An object linked while its reservation still stands is counted once, as stored.
    """
    reservations = app[keys.RESERVATIONS]
    stored = await db.oids_counted_in_space(
        app[keys.DB], space_id, list(reservations.oids(space_id))
    )
    return reservations.reserved(space_id, excluding=excluding | stored)


async def link_reserved(
    app: web.Application, space_id: str, model_id: str, oid: str, size: int
) -> None:
    """Link a stored object to a model, then give back its reservation.

    Both happen under the space's quota lock: a quota check reads the stored bytes, then
    the reservations, and must not see the object in neither. Objects stored while the
    lock is held wait in one batch per model and are linked together, in one statement: the
    database takes one write at a time. A background task links the batch and gives back
    its reservations, even if the uploads that wait for it go away. When nothing holds the
    lock and the database takes the write at once, the object is linked right here, with no
    pause in which a check could run.
    """
    batches = app[keys.LINK_BATCHES]
    quiet = (space_id, model_id) not in batches and not app[keys.OBJECT_LOCKS].busy(
        ("quota", space_id)
    )
    if quiet:
        try:
            linked = db.link_objects_at_once(app[keys.DB], space_id, model_id, {oid: size})
        except BaseException:
            app[keys.RESERVATIONS].release(space_id, oid)
            raise
        if linked:
            app[keys.RESERVATIONS].release(space_id, oid)
            return
    batch = batches.get((space_id, model_id))
    if batch is None:
        sizes: dict[str, int] = {}
        linked = app[keys.BACKGROUND].spawn(
            _link_batch(app, space_id, model_id, sizes), f"link objects to {space_id}/{model_id}"
        )
        batch = batches[(space_id, model_id)] = LinkBatch(sizes, linked)
    batch.sizes[oid] = size
    await asyncio.shield(batch.linked)


async def _link_batch(
    app: web.Application, space_id: str, model_id: str, sizes: dict[str, int]
) -> None:
    async with app[keys.OBJECT_LOCKS].hold(("quota", space_id)):
        del app[keys.LINK_BATCHES][(space_id, model_id)]  # later objects wait for the next
        try:
            await db.link_objects(app[keys.DB], space_id, model_id, sizes)
        finally:
            for oid in sizes:
                app[keys.RESERVATIONS].release(space_id, oid)


async def room_left(app: web.Application, space: db.Space) -> int:
    """Bytes the space can still take, after usage and reservations."""
    async with app[keys.OBJECT_LOCKS].hold(("quota", space.id)):
        used = await space_used(app, space.id)
        used += await _reserved_not_stored(app, space.id, excluding=set())
    return space.quota - used

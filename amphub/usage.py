"""What a space uses: each LFS object once, plus its git repositories; and the quota check."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from amphub import db, keys
from amphub.errors import QuotaExceeded
from amphub.git.bridge import run_blocking
from amphub.git.repos import repo_path, repo_size
from amphub.quota import quota_message

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
    database = app[keys.DB]
    models = await db.list_space_models(database, space_id)
    config = app[keys.CONFIG]
    paths = {m.id: repo_path(config, space_id, m.id) for m in models}
    git_sizes = await run_blocking(app, lambda: {k: repo_size(p) for k, p in paths.items()})
    lfs_total, lfs_by_owner = await db.space_lfs_usage(database, space_id)
    by_owner: dict[str, int] = dict(lfs_by_owner)
    models_by_owner: dict[str, int] = {}
    for model in models:
        by_owner[model.owner] = by_owner.get(model.owner, 0) + git_sizes[model.id]
        models_by_owner[model.owner] = models_by_owner.get(model.owner, 0) + 1
    return Usage(lfs_total + sum(git_sizes.values()), by_owner, models_by_owner)


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
        used = (await space_usage(app, space.id)).used
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


async def room_left(app: web.Application, space: db.Space) -> int:
    """Bytes the space can still take, after usage and reservations."""
    async with app[keys.OBJECT_LOCKS].hold(("quota", space.id)):
        used = (await space_usage(app, space.id)).used
        used += await _reserved_not_stored(app, space.id, excluding=set())
    return space.quota - used

"""When the branches of mirrored repos are fetched again from their upstream."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from amphub.db.core import Database, fetch_all, row_to
from amphub.db.upstreams import Mirror

__all__ = [
    "MirrorSchedule",
    "set_mirror_schedule",
    "remove_mirror_schedule",
    "remove_mirror_schedules",
    "mirror_schedules",
    "due_mirror_schedules",
    "postpone_mirror_schedule",
    "upstream_mirrors",
]

_COLUMNS = "upstream, repo, revision, refresh_hours, due_at, created_by, created_at"


@dataclass(frozen=True)
class MirrorSchedule:
    """A branch or tag of an upstream repo that is mirrored again every `refresh_hours`."""

    upstream: str
    repo: str
    revision: str
    refresh_hours: int
    due_at: str  # when the next refresh is queued
    created_by: str  # whom the refresh tasks are queued by
    created_at: str


async def set_mirror_schedule(db: Database, schedule: MirrorSchedule) -> None:
    """Keep a schedule, replacing the one of the same upstream, repo and revision."""
    async with db.transaction() as conn:
        await conn.execute(
            f"INSERT INTO mirror_schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (upstream, repo, revision) DO UPDATE SET"
            " refresh_hours = excluded.refresh_hours, due_at = excluded.due_at,"
            " created_by = excluded.created_by",
            dataclasses.astuple(schedule),
        )


async def remove_mirror_schedule(db: Database, upstream: str, repo: str, revision: str) -> None:
    """Stop refreshing one branch of a mirrored repo."""
    async with db.transaction() as conn:
        await conn.execute(
            "DELETE FROM mirror_schedules WHERE upstream = ? AND repo = ? AND revision = ?",
            (upstream, repo, revision),
        )


async def remove_mirror_schedules(db: Database, upstream: str) -> None:
    """Stop refreshing anything mirrored from an upstream."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM mirror_schedules WHERE upstream = ?", (upstream,))


async def mirror_schedules(db: Database, upstream: str) -> list[MirrorSchedule]:
    """The schedules of an upstream's repos, by repo and revision."""
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM mirror_schedules WHERE upstream = ? ORDER BY repo, revision",
        upstream,
    )
    return [row_to(MirrorSchedule, row) for row in rows]


async def due_mirror_schedules(db: Database, now: str) -> list[MirrorSchedule]:
    """The schedules whose refresh is due at `now`, the longest due first."""
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM mirror_schedules WHERE due_at <= ? ORDER BY due_at",
        now,
    )
    return [row_to(MirrorSchedule, row) for row in rows]


async def postpone_mirror_schedule(db: Database, schedule: MirrorSchedule, due_at: str) -> None:
    """Set when a schedule is due next."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE mirror_schedules SET due_at = ?"
            " WHERE upstream = ? AND repo = ? AND revision = ?",
            (due_at, schedule.upstream, schedule.repo, schedule.revision),
        )


async def upstream_mirrors(db: Database, upstream: str) -> list[Mirror]:
    """The models that mirror an upstream's repos, by repo."""
    rows = await fetch_all(
        db,
        "SELECT space_id, model_id, upstream, repo, created_at FROM mirrors"
        " WHERE upstream = ? ORDER BY repo",
        upstream,
    )
    return [row_to(Mirror, row) for row in rows]

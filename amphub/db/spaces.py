"""Spaces."""

from __future__ import annotations

import sqlite3

from amphub.db.core import Audit, Conflict, Database, Space, fetch_all, fetch_one

__all__ = [
    "insert_space",
    "get_space",
    "list_spaces",
    "update_space",
    "mark_space_released",
    "mark_space_purged",
]


def _space(row: sqlite3.Row) -> Space:
    return Space(
        row["id"],
        row["name"],
        row["quota"],
        row["billing_mode"],
        row["expires_at"],
        row["creator"],
        row["created_at"],
        row["released_at"],
        row["purged_at"],
    )


async def insert_space(
    db: Database,
    space_id: str,
    name: str,
    quota: int,
    billing_mode: str,
    expires_at: str | None,
    creator: str,
) -> Space:
    """Create a space; `Conflict` if the id is taken."""
    now = db.now()
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO spaces (id, name, quota, billing_mode, expires_at, creator,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (space_id, name, quota, billing_mode, expires_at, creator, now),
            )
    except sqlite3.IntegrityError:
        raise Conflict(f"space {space_id} exists already") from None
    return Space(space_id, name, quota, billing_mode, expires_at, creator, now)


async def get_space(db: Database, space_id: str) -> Space | None:
    """The space with this id."""
    row = await fetch_one(db, "SELECT * FROM spaces WHERE id = ?", space_id)
    return _space(row) if row else None


async def list_spaces(db: Database) -> list[Space]:
    """Every space, by id."""
    return [_space(row) for row in await fetch_all(db, "SELECT * FROM spaces ORDER BY id")]


async def update_space(
    db: Database,
    space_id: str,
    audit: Audit,
    *,
    name: str | None = None,
    quota: int | None = None,
    expires_at: str | None = None,
) -> Space | None:
    """Change the given fields of a space and return it."""
    async with db.transaction(audit) as conn:
        await conn.execute(
            "UPDATE spaces SET name = coalesce(?, name), quota = coalesce(?, quota),"
            " expires_at = coalesce(?, expires_at) WHERE id = ?",
            (name, quota, expires_at, space_id),
        )
    return await get_space(db, space_id)


async def mark_space_released(db: Database, space_id: str, audit: Audit) -> None:
    """Record that a space was released (unsubscribed); its data is deleted next."""
    async with db.transaction(audit) as conn:
        await conn.execute(
            "UPDATE spaces SET released_at = coalesce(released_at, ?) WHERE id = ?",
            (db.now(), space_id),
        )


async def mark_space_purged(db: Database, space_id: str) -> None:
    """Record that a released space's models and data are gone."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE spaces SET purged_at = ? WHERE id = ?", (db.now(), space_id))

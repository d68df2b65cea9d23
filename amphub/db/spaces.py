"""Spaces."""

from __future__ import annotations

from amphub.db.core import (
    Audit,
    Conflict,
    Database,
    IntegrityError,
    Space,
    fetch_all,
    fetch_one,
    row_to,
)

__all__ = [
    "insert_space",
    "get_space",
    "list_spaces",
    "update_space",
    "mark_space_released",
    "mark_space_purged",
]


_COLUMNS = "id, name, quota, billing_mode, expires_at, creator, created_at, released_at, purged_at"


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
    except IntegrityError:
        raise Conflict(f"space {space_id} exists already") from None
    return Space(
        id=space_id,
        name=name,
        quota=quota,
        billing_mode=billing_mode,
        expires_at=expires_at,
        creator=creator,
        created_at=now,
    )


async def get_space(db: Database, space_id: str) -> Space | None:
    """The space with this id."""
    row = await fetch_one(db, f"SELECT {_COLUMNS} FROM spaces WHERE id = ?", space_id)
    return row_to(Space, row) if row else None


async def list_spaces(db: Database) -> list[Space]:
    """Every space, by id."""
    rows = await fetch_all(db, f"SELECT {_COLUMNS} FROM spaces ORDER BY id")
    return [row_to(Space, row) for row in rows]


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

"""LFS objects, their links to models, and file locks."""

from __future__ import annotations

from amphub.db.core import (
    Conflict,
    Database,
    IntegrityError,
    LfsLock,
    fetch_all,
    fetch_one,
    look_up,
    row_to,
)

__all__ = [
    "linked_object_sizes",
    "oids_counted_in_space",
    "space_lfs_bytes",
    "model_lfs_bytes",
    "space_lfs_bytes_by_owner",
    "link_objects",
    "link_objects_at_once",
    "model_oids",
    "forget_object_if_unreferenced",
    "unreferenced_oids",
    "stored_object_sizes",
    "insert_lock",
    "find_lock",
    "list_locks",
    "delete_lock",
]


async def linked_object_sizes(
    db: Database, space_id: str, model_id: str, oids: list[str]
) -> dict[str, int]:
    """Of `oids`, those linked to the model, with their sizes."""
    found: dict[str, int] = {}
    for start in range(0, len(oids), 500):
        part = oids[start : start + 500]
        marks = ",".join("?" * len(part))
        rows = await look_up(
            db,
            "SELECT o.oid, o.size FROM model_objects m JOIN lfs_objects o ON o.oid = m.oid"
            f" WHERE m.space_id = ? AND m.model_id = ? AND m.oid IN ({marks})",
            space_id,
            model_id,
            *part,
        )
        found.update({row[0]: row[1] for row in rows})
    return found


async def oids_counted_in_space(db: Database, space_id: str, oids: list[str]) -> set[str]:
    """Of `oids`, those some model of the space links already (so they cost it nothing)."""
    found: set[str] = set()
    for start in range(0, len(oids), 500):
        part = oids[start : start + 500]
        marks = ",".join("?" * len(part))
        rows = await look_up(
            db,
            f"SELECT DISTINCT oid FROM model_objects WHERE space_id = ? AND oid IN ({marks})",
            space_id,
            *part,
        )
        found.update(row[0] for row in rows)
    return found


async def space_lfs_bytes(db: Database, space_id: str) -> int:
    """Bytes of LFS objects in the space, each counted once."""
    rows = await fetch_all(
        db,
        "SELECT coalesce(sum(size), 0) FROM lfs_objects WHERE oid IN"
        " (SELECT oid FROM model_objects WHERE space_id = ?)",
        space_id,
    )
    return rows[0][0]


async def model_lfs_bytes(db: Database, space_id: str, model_id: str) -> int:
    """Bytes of the LFS objects a model links, each counted once."""
    rows = await fetch_all(
        db,
        "SELECT coalesce(sum(o.size), 0) FROM model_objects m JOIN lfs_objects o ON o.oid = m.oid"
        " WHERE m.space_id = ? AND m.model_id = ?",
        space_id,
        model_id,
    )
    return rows[0][0]


async def space_lfs_bytes_by_owner(db: Database, space_id: str) -> dict[str, int]:
    """Bytes of LFS objects in the space per model owner, each counted once per owner."""
    rows = await fetch_all(
        db,
        "SELECT m.owner, coalesce(sum(o.size), 0) FROM models m"
        " JOIN (SELECT DISTINCT model_id, oid FROM model_objects WHERE space_id = ?) l"
        " ON l.model_id = m.id JOIN lfs_objects o ON o.oid = l.oid"
        " WHERE m.space_id = ? GROUP BY m.owner",
        space_id,
        space_id,
    )
    return {row[0]: row[1] for row in rows}


LINKS_PER_STATEMENT = 500


async def link_objects(db: Database, space_id: str, model_id: str, sizes: dict[str, int]) -> None:
    """Record stored objects and link them to a model, 500 to a statement (idempotent)."""
    now = db.now()
    items = list(sizes.items())
    for start in range(0, len(items), LINKS_PER_STATEMENT):
        part = items[start : start + LINKS_PER_STATEMENT]
        await db.write(*_link_statement(space_id, model_id, part, now))


def link_objects_at_once(db: Database, space_id: str, model_id: str, sizes: dict[str, int]) -> bool:
    """`link_objects` if the database takes it without a wait; False (nothing linked) if not."""
    if len(sizes) > LINKS_PER_STATEMENT:
        return False
    return db.write_at_once(*_link_statement(space_id, model_id, list(sizes.items()), db.now()))


def _link_statement(
    space_id: str, model_id: str, items: list[tuple[str, int]], now: str
) -> tuple[str, tuple[object, ...]]:
    return (
        "INSERT INTO object_links (space_id, model_id, oid, size, at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?)"] * len(items)),
        tuple(v for oid, size in items for v in (space_id, model_id, oid, size, now)),
    )


async def model_oids(db: Database, space_id: str, model_id: str) -> list[str]:
    """Every object linked to a model."""
    rows = await fetch_all(
        db,
        "SELECT oid FROM model_objects WHERE space_id = ? AND model_id = ?",
        space_id,
        model_id,
    )
    return [row[0] for row in rows]


async def forget_object_if_unreferenced(db: Database, oid: str) -> bool:
    """Delete an object's row when no model links it; True if it was deleted."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM lfs_objects WHERE oid = ?"
            " AND NOT EXISTS (SELECT 1 FROM model_objects WHERE oid = ?)",
            (oid, oid),
        )
    return cursor.rowcount == 1


async def unreferenced_oids(db: Database) -> list[str]:
    """Objects stored but linked to no model."""
    rows = await fetch_all(
        db,
        "SELECT oid FROM lfs_objects o"
        " WHERE NOT EXISTS (SELECT 1 FROM model_objects m WHERE m.oid = o.oid)",
    )
    return [row[0] for row in rows]


async def stored_object_sizes(db: Database) -> dict[str, tuple[int, int]]:
    """Every object the database says is stored: its size, and how many models link it."""
    rows = await fetch_all(
        db,
        "SELECT o.oid, o.size, (SELECT count(*) FROM model_objects m WHERE m.oid = o.oid)"
        " FROM lfs_objects o",
    )
    return {row[0]: (row[1], row[2]) for row in rows}


_LOCK_COLUMNS = "id, space_id, model_id, path, ref, owner, locked_at"


async def insert_lock(
    db: Database, space_id: str, model_id: str, path: str, ref: str | None, owner: str
) -> LfsLock:
    """Lock a path; `Conflict` if it is locked already."""
    now = db.now()
    try:
        async with db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO lfs_locks (space_id, model_id, path, ref, owner, locked_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (space_id, model_id, path, ref, owner, now),
            )
            (lock_id,) = await cursor.fetchone()
    except IntegrityError:
        raise Conflict(f"{path} is locked already") from None
    return LfsLock(
        id=lock_id,
        space_id=space_id,
        model_id=model_id,
        path=path,
        ref=ref,
        owner=owner,
        locked_at=now,
    )


async def find_lock(db: Database, space_id: str, model_id: str, path: str) -> LfsLock | None:
    """The lock on a path, if any."""
    row = await fetch_one(
        db,
        f"SELECT {_LOCK_COLUMNS} FROM lfs_locks WHERE space_id = ? AND model_id = ? AND path = ?",
        space_id,
        model_id,
        path,
    )
    return row_to(LfsLock, row) if row else None


async def list_locks(
    db: Database,
    space_id: str,
    model_id: str,
    *,
    path: str | None = None,
    lock_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[LfsLock]:
    """Locks of a model in id order, filtered by path or id, starting after `after_id`."""
    rows = await fetch_all(
        db,
        f"SELECT {_LOCK_COLUMNS} FROM lfs_locks WHERE space_id = ? AND model_id = ? AND id > ?"
        " AND (? IS NULL OR path = ?) AND (? IS NULL OR id = ?) ORDER BY id LIMIT ?",
        space_id,
        model_id,
        after_id,
        path,
        path,
        lock_id,
        lock_id,
        limit,
    )
    return [row_to(LfsLock, row) for row in rows]


async def delete_lock(db: Database, space_id: str, model_id: str, lock_id: int) -> bool:
    """Remove a lock; False if there was none with that id."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM lfs_locks WHERE space_id = ? AND model_id = ? AND id = ?",
            (space_id, model_id, lock_id),
        )
    return cursor.rowcount == 1

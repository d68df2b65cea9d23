"""Bytes reserved for uploads in flight, and the objects they claim: rows every node sees.

A row lives until its `expires_at`. The rows an upload holds carry its node's `holder` and
are renewed by that node while it runs (`renew_held`), so a node that dies leaves nothing
behind for longer than one lease.
"""

from __future__ import annotations

from amphub.db.core import Database, fetch_all, look_up

__all__ = [
    "reserve",
    "hold_reservation",
    "reservation_live",
    "release_reservations",
    "stored_and_reserved_bytes",
    "insert_claim",
    "delete_claim",
    "object_claimed",
    "renew_held",
    "delete_expired",
]

ROWS_PER_STATEMENT = 500


async def reserve(db: Database, space_id: str, sizes: dict[str, int], expires_at: str) -> None:
    """Reserve (or renew) the bytes of each object until `expires_at`."""
    items = list(sizes.items())
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        part = items[start : start + ROWS_PER_STATEMENT]
        await db.write(
            "INSERT INTO reservations (space_id, oid, size, expires_at) VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * len(part))
            + " ON CONFLICT (space_id, oid)"
            " DO UPDATE SET size = excluded.size, expires_at = excluded.expires_at",
            tuple(v for oid, size in part for v in (space_id, oid, size, expires_at)),
        )


async def hold_reservation(
    db: Database, space_id: str, oid: str, size: int, holder: str, expires_at: str
) -> bool:
    """Make a live reservation the holder's until `expires_at`; False if none was live."""
    now = db.now()
    await db.write(
        "UPDATE reservations SET size = ?, holder = ?, expires_at = ?"
        " WHERE space_id = ? AND oid = ? AND expires_at > ?",
        (size, holder, expires_at, space_id, oid, now),
    )
    return await reservation_live(db, space_id, oid)


async def reservation_live(db: Database, space_id: str, oid: str) -> bool:
    """Whether an upload of `oid` into the space has a live reservation."""
    rows = await look_up(
        db,
        "SELECT 1 FROM reservations WHERE space_id = ? AND oid = ? AND expires_at > ?",
        space_id,
        oid,
        db.now(),
    )
    return bool(rows)


async def release_reservations(db: Database, space_id: str, oids: list[str]) -> None:
    """Give back the reservations of the objects."""
    for start in range(0, len(oids), ROWS_PER_STATEMENT):
        part = oids[start : start + ROWS_PER_STATEMENT]
        await db.write(
            f"DELETE FROM reservations WHERE space_id = ? AND oid IN ({','.join('?' * len(part))})",
            (space_id, *part),
        )


async def stored_and_reserved_bytes(
    db: Database, space_id: str, excluding: set[str]
) -> tuple[int, int]:
    """Bytes of the space's LFS objects, and of its live reservations for objects it lacks.

    One statement reads both at one instant. An upload links its object and then gives
    back the reservation: a reading between the two counts the object once, as stored,
    and no reading can miss it in both. Reservations of `excluding` are left out.
    """
    leave_out = f" AND r.oid NOT IN ({','.join('?' * len(excluding))})" if excluding else ""
    rows = await fetch_all(
        db,
        "SELECT (SELECT coalesce(sum(size), 0) FROM lfs_objects"
        "  WHERE oid IN (SELECT oid FROM model_objects WHERE space_id = ?)),"
        " (SELECT coalesce(sum(r.size), 0) FROM reservations r"
        "  WHERE r.space_id = ? AND r.expires_at > ?"
        "  AND NOT EXISTS (SELECT 1 FROM model_objects m"
        "   WHERE m.space_id = r.space_id AND m.oid = r.oid)" + leave_out + ")",
        space_id,
        space_id,
        db.now(),
        *excluding,
    )
    return rows[0][0], rows[0][1]


async def insert_claim(db: Database, oid: str, claim_id: str, holder: str, expires_at: str) -> None:
    """Claim an object for the holder until `expires_at` (claims of one object add up)."""
    await db.write(
        "INSERT INTO object_claims (oid, id, holder, expires_at) VALUES (?, ?, ?, ?)",
        (oid, claim_id, holder, expires_at),
    )


async def delete_claim(db: Database, oid: str, claim_id: str) -> None:
    """End one claim."""
    await db.write("DELETE FROM object_claims WHERE oid = ? AND id = ?", (oid, claim_id))


async def object_claimed(db: Database, oid: str) -> bool:
    """Whether an upload on some node is storing or linking the object now."""
    rows = await look_up(
        db,
        "SELECT 1 FROM object_claims WHERE oid = ? AND expires_at > ? LIMIT 1",
        oid,
        db.now(),
    )
    return bool(rows)


async def renew_held(db: Database, holder: str, expires_at: str) -> None:
    """Extend every reservation and claim the holder has until `expires_at`."""
    await db.write("UPDATE reservations SET expires_at = ? WHERE holder = ?", (expires_at, holder))
    await db.write("UPDATE object_claims SET expires_at = ? WHERE holder = ?", (expires_at, holder))


async def delete_expired(db: Database) -> None:
    """Remove the reservations and claims whose time is up."""
    now = db.now()
    await db.write("DELETE FROM reservations WHERE expires_at <= ?", (now,))
    await db.write("DELETE FROM object_claims WHERE expires_at <= ?", (now,))

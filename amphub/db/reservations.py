"""Bytes reserved for uploads in flight, and the objects they claim: rows every node sees.

A row lives until its `expires_at`. The node of an upload in flight renews what the upload
holds while it runs, so a node that dies leaves nothing behind for longer than a lease.
"""

from __future__ import annotations

from amphub.db.core import Database, fetch_all, look_up, look_up_one

__all__ = [
    "reserve",
    "keep_reservation",
    "reservation_live",
    "release_reservations",
    "stored_and_reserved_bytes",
    "renew_reservations",
    "insert_claim",
    "delete_claim",
    "object_claimed",
    "renew_claims",
    "delete_expired",
]

ROWS_PER_STATEMENT = 500


def _marks(items: list[str] | set[str]) -> str:
    return ",".join("?" * len(items))


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


async def keep_reservation(db: Database, space_id: str, oid: str, size: int, until: str) -> bool:
    """Make a live reservation hold `size` bytes until `until` at least; False if none is live.

    Writes only when it must: an upload that starts soon after its batch call reads.
    """
    now = db.now()
    row = await look_up_one(
        db,
        "SELECT size, expires_at FROM reservations"
        " WHERE space_id = ? AND oid = ? AND expires_at > ?",
        space_id,
        oid,
        now,
    )
    if row is None:
        return False
    if row[0] != size or row[1] < until:
        await db.write(
            "UPDATE reservations SET size = ?,"
            " expires_at = CASE WHEN expires_at < ? THEN ? ELSE expires_at END"
            " WHERE space_id = ? AND oid = ?",
            (size, until, until, space_id, oid),
        )
    return True


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
            f"DELETE FROM reservations WHERE space_id = ? AND oid IN ({_marks(part)})",
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
    leave_out = f" AND r.oid NOT IN ({_marks(excluding)})" if excluding else ""
    rows = await fetch_all(
        db,
        "SELECT (SELECT coalesce(sum(size), 0) FROM lfs_objects"
        "  WHERE oid IN (SELECT oid FROM model_objects WHERE space_id = ?)),"
        " (SELECT coalesce(sum(r.size), 0) FROM reservations r"
        "  WHERE r.space_id = ? AND r.expires_at > ?"
        # Not correlated: the space's objects are listed once, not once per reservation.
        "  AND r.oid NOT IN (SELECT oid FROM model_objects WHERE space_id = ?)" + leave_out + ")",
        space_id,
        space_id,
        db.now(),
        space_id,
        *excluding,
    )
    return rows[0][0], rows[0][1]


async def renew_reservations(db: Database, space_id: str, oids: list[str], until: str) -> None:
    """Make the live reservations of the objects last until `until` at least."""
    for start in range(0, len(oids), ROWS_PER_STATEMENT):
        part = oids[start : start + ROWS_PER_STATEMENT]
        await db.write(
            "UPDATE reservations SET expires_at = ?"
            f" WHERE space_id = ? AND oid IN ({_marks(part)}) AND expires_at > ?"
            " AND expires_at < ?",
            (until, space_id, *part, db.now(), until),
        )


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
    """Whether an upload on some node may be storing or linking the object now.

    A live reservation of the object counts as a claim: its upload has not linked it yet.
    """
    now = db.now()
    rows = await fetch_all(
        db,
        "SELECT 1 FROM object_claims WHERE oid = ? AND expires_at > ?"
        " UNION ALL SELECT 1 FROM reservations WHERE oid = ? AND expires_at > ?",
        oid,
        now,
        oid,
        now,
    )
    return bool(rows)


async def renew_claims(db: Database, holder: str, until: str) -> None:
    """Make every claim of the holder last until `until`."""
    await db.write("UPDATE object_claims SET expires_at = ? WHERE holder = ?", (until, holder))


async def delete_expired(db: Database) -> None:
    """Remove the reservations and claims whose time is up."""
    now = db.now()
    await db.write("DELETE FROM reservations WHERE expires_at <= ?", (now,))
    await db.write("DELETE FROM object_claims WHERE expires_at <= ?", (now,))

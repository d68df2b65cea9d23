"""Failed sign-ins by client address, counted alike by every node."""

from __future__ import annotations

from amphub.db.core import Database, look_up_one

__all__ = ["failed_sign_ins", "count_failed_sign_in", "forget_failed_sign_ins"]


async def failed_sign_ins(db: Database, address: str) -> tuple[str, int] | None:
    """When the address's window of failures opened, and how many it holds; None if none."""
    row = await look_up_one(
        db, "SELECT since, failures FROM failed_sign_ins WHERE address = ?", address
    )
    return (row[0], row[1]) if row else None


async def count_failed_sign_in(db: Database, address: str, opened_after: str) -> None:
    """Count one more failure; a window opened at or before `opened_after` starts anew."""
    now = db.now()
    await db.write(
        "INSERT INTO failed_sign_ins (address, since, failures) VALUES (?, ?, 1)"
        " ON CONFLICT (address) DO UPDATE SET"
        " failures = CASE WHEN failed_sign_ins.since <= ? THEN 1"
        "  ELSE failed_sign_ins.failures + 1 END,"
        " since = CASE WHEN failed_sign_ins.since <= ? THEN excluded.since"
        "  ELSE failed_sign_ins.since END",
        (address, now, opened_after, opened_after),
    )


async def forget_failed_sign_ins(db: Database, opened_before: str) -> None:
    """Delete the windows opened at or before `opened_before`: they are over."""
    await db.write("DELETE FROM failed_sign_ins WHERE since <= ?", (opened_before,))

"""The hub's signing secret, one for every node."""

from __future__ import annotations

from amphub.db.core import Database, fetch_one

__all__ = ["signing_secret", "offer_signing_secret"]

NAME = "signing"


async def signing_secret(db: Database) -> str | None:
    """The secret as hex, if one was stored."""
    row = await fetch_one(db, "SELECT value FROM signing_secrets WHERE name = ?", NAME)
    return row[0] if row else None


async def offer_signing_secret(db: Database, value: str) -> None:
    """Store the secret (hex) unless one is stored already: the first node's stays."""
    await db.write(
        "INSERT INTO signing_secrets (name, value, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        (NAME, value, db.now()),
    )

"""Where the chunks of a model's Xet uploads are stored: byte ranges of its LFS objects."""

from __future__ import annotations

from amphub.db.core import Database, fetch_all

__all__ = [
    "XetChunk",
    "index_xet_chunks",
    "xet_chunks",
    "count_xet_chunks",
    "count_model_xet_chunks",
]

XetChunk = tuple[str, int, str, int, int]
"""(xorb, chunk index, oid, offset, length)."""


async def index_xet_chunks(
    db: Database, space_id: str, model_id: str, chunks: list[XetChunk]
) -> None:
    """Remember where chunks were stored; a chunk stored twice keeps its first place."""
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO xet_chunks (space_id, model_id, xorb, chunk, oid, offset, length)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(space_id, model_id, *chunk) for chunk in chunks],
        )


async def xet_chunks(
    db: Database, space_id: str, model_id: str, xorb: str, start: int, end: int
) -> list[XetChunk]:
    """The stored places of chunks [start, end) of a xorb, in order (missing ones left out)."""
    rows = await fetch_all(
        db,
        "SELECT xorb, chunk, oid, offset, length FROM xet_chunks"
        " WHERE space_id = ? AND model_id = ? AND xorb = ? AND chunk >= ? AND chunk < ?"
        " ORDER BY chunk",
        space_id,
        model_id,
        xorb,
        start,
        end,
    )
    return [tuple(row) for row in rows]


async def count_xet_chunks(db: Database, space_id: str, model_id: str, xorb: str) -> int:
    """How many chunks of a xorb have a stored place."""
    rows = await fetch_all(
        db,
        "SELECT count(*) FROM xet_chunks WHERE space_id = ? AND model_id = ? AND xorb = ?",
        space_id,
        model_id,
        xorb,
    )
    return rows[0][0]


async def count_model_xet_chunks(db: Database, space_id: str, model_id: str) -> int:
    """How many chunks of a model's Xet uploads have a stored place."""
    rows = await fetch_all(
        db,
        "SELECT count(*) FROM xet_chunks WHERE space_id = ? AND model_id = ?",
        space_id,
        model_id,
    )
    return rows[0][0]

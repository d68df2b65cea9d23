"""Upstream hubs that models are mirrored from, and the models that mirror them."""

from __future__ import annotations

from dataclasses import dataclass

from amphub.db.core import (
    Database,
    look_up_one,
    row_to,
)

__all__ = [
    "Upstream",
    "Mirror",
    "record_mirror",
    "get_mirror",
]

_MIRROR_COLUMNS = "space_id, model_id, upstream, repo, created_at"


@dataclass(frozen=True)
class Upstream:
    """A hub speaking the Hugging Face Hub API, and the space its mirrors go to."""

    name: str
    url: str
    space_id: str
    sealed_token: bytes | None
    visibility: str  # of the models it mirrors
    created_at: str


@dataclass(frozen=True)
class Mirror:
    """A model that mirrors an upstream's repo."""

    space_id: str
    model_id: str
    upstream: str
    repo: str
    created_at: str


async def record_mirror(
    db: Database, space_id: str, model_id: str, upstream: str, repo: str
) -> None:
    """Mark a model as the mirror of an upstream's repo (again: no change)."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO mirrors (space_id, model_id, upstream, repo, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (space_id, model_id, upstream, repo, db.now()),
        )


async def get_mirror(db: Database, space_id: str, model_id: str) -> Mirror | None:
    """The mirror record of a model, if it mirrors an upstream."""
    # Asked on every Hub API request: read by key on the loop's thread.
    row = await look_up_one(
        db,
        f"SELECT {_MIRROR_COLUMNS} FROM mirrors WHERE space_id = ? AND model_id = ?",
        space_id,
        model_id,
    )
    return row_to(Mirror, row) if row else None

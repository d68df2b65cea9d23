"""Upstream hubs that models are mirrored from, and the models that mirror them."""

from __future__ import annotations

from dataclasses import dataclass

from amphub.db.core import (
    Audit,
    Conflict,
    Database,
    IntegrityError,
    fetch_all,
    fetch_one,
    look_up_one,
    row_to,
)

__all__ = [
    "Upstream",
    "Mirror",
    "insert_upstream",
    "get_upstream",
    "list_upstreams",
    "delete_upstream",
    "record_mirror",
    "get_mirror",
]

_UPSTREAM_COLUMNS = "name, url, space_id, sealed_token, created_at"
_MIRROR_COLUMNS = "space_id, model_id, upstream, repo, created_at"


@dataclass(frozen=True)
class Upstream:
    """A hub speaking the Hugging Face Hub API, and the space its mirrors go to."""

    name: str
    url: str
    space_id: str
    sealed_token: bytes | None
    created_at: str


@dataclass(frozen=True)
class Mirror:
    """A model that mirrors an upstream's repo."""

    space_id: str
    model_id: str
    upstream: str
    repo: str
    created_at: str


async def insert_upstream(
    db: Database, name: str, url: str, space_id: str, sealed_token: bytes | None, audit: Audit
) -> Upstream:
    """Register an upstream; `Conflict` if the name is taken."""
    now = db.now()
    try:
        async with db.transaction(audit) as conn:
            await conn.execute(
                "INSERT INTO upstreams (name, url, space_id, sealed_token, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, url, space_id, sealed_token, now),
            )
    except IntegrityError:
        raise Conflict(f"upstream {name} exists already") from None
    return Upstream(name, url, space_id, sealed_token, now)


async def get_upstream(db: Database, name: str) -> Upstream | None:
    """The upstream with this name."""
    row = await fetch_one(db, f"SELECT {_UPSTREAM_COLUMNS} FROM upstreams WHERE name = ?", name)
    return row_to(Upstream, row) if row else None


async def list_upstreams(db: Database) -> list[Upstream]:
    """Every upstream, by name."""
    rows = await fetch_all(db, f"SELECT {_UPSTREAM_COLUMNS} FROM upstreams ORDER BY name")
    return [row_to(Upstream, row) for row in rows]


async def delete_upstream(db: Database, name: str, audit: Audit) -> bool:
    """Forget an upstream; False if there was none. Its mirrored models stay."""
    async with db.transaction(audit) as conn:
        cursor = await conn.execute("DELETE FROM upstreams WHERE name = ?", (name,))
    return cursor.rowcount > 0


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

"""Models and the pushes that moved their refs."""

from __future__ import annotations

from amphub.db.core import Audit, Conflict, Database, Model, Push, fetch_all, fetch_one, row_to

__all__ = [
    "insert_model",
    "delete_model_row",
    "get_model",
    "list_space_models",
    "list_models",
    "record_pushes",
    "list_pushes",
    "update_model",
]


_COLUMNS = "space_id, id, name, visibility, owner, created_at, updated_at"


async def insert_model(
    db: Database, space_id: str, model_id: str, name: str, visibility: str, owner: str
) -> Model:
    """Create a model row; `Conflict` if the id is taken in the space (case-insensitively)."""
    now = db.now()
    async with db.transaction() as conn:
        taken = await (
            await conn.execute(
                "SELECT 1 FROM models WHERE space_id = ? AND lower(id) = lower(?)",
                (space_id, model_id),
            )
        ).fetchone()
        if taken:
            raise Conflict(f"model {space_id}/{model_id} exists already")
        await conn.execute(
            "INSERT INTO models (space_id, id, name, visibility, owner, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (space_id, model_id, name, visibility, owner, now, now),
        )
    return Model(
        space_id=space_id,
        id=model_id,
        name=name,
        visibility=visibility,
        owner=owner,
        created_at=now,
        updated_at=now,
    )


async def delete_model_row(
    db: Database, space_id: str, model_id: str, audit: Audit | None = None
) -> None:
    """Forget a model, its tasks, replicas and deployments (the repository is the caller's).

    Its tasks go with it: a model created later under the same id starts with none. A
    running task finds its row gone at its next progress report and stops.
    """
    async with db.transaction(audit) as conn:
        await conn.execute("DELETE FROM models WHERE space_id = ? AND id = ?", (space_id, model_id))
        for table in ("replicas", "tasks"):
            await conn.execute(
                f"DELETE FROM {table} WHERE space_id = ? AND model_id = ?", (space_id, model_id)
            )
        await conn.execute(
            "UPDATE deployments SET deleted_at = ? WHERE space_id = ? AND model_id = ?"
            " AND deleted_at IS NULL",
            (db.now(), space_id, model_id),
        )


async def get_model(db: Database, space_id: str, model_id: str) -> Model | None:
    """The model with this id in the space."""
    row = await fetch_one(
        db, f"SELECT {_COLUMNS} FROM models WHERE space_id = ? AND id = ?", space_id, model_id
    )
    return row_to(Model, row) if row else None


async def list_space_models(db: Database, space_id: str) -> list[Model]:
    """The models of one space, by id."""
    rows = await fetch_all(
        db, f"SELECT {_COLUMNS} FROM models WHERE space_id = ? ORDER BY id", space_id
    )
    return [row_to(Model, row) for row in rows]


async def list_models(db: Database) -> list[Model]:
    """Every model, most recently updated first."""
    rows = await fetch_all(
        db, f"SELECT {_COLUMNS} FROM models ORDER BY updated_at DESC, space_id, id"
    )
    return [row_to(Model, row) for row in rows]


async def record_pushes(db: Database, pushes: list[Push]) -> None:
    """Store the refs a push moved and mark the model as updated."""
    if not pushes:
        return
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO pushes (space_id, model_id, user, ref, old, new, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(p.space_id, p.model_id, p.user, p.ref, p.old, p.new, p.at) for p in pushes],
        )
        first = pushes[0]
        await conn.execute(
            "UPDATE models SET updated_at = ? WHERE space_id = ? AND id = ?",
            (first.at, first.space_id, first.model_id),
        )


async def list_pushes(db: Database, space_id: str, model_id: str) -> list[Push]:
    """The refs moved in a model, oldest first."""
    rows = await fetch_all(
        db,
        "SELECT space_id, model_id, user, ref, old, new, at FROM pushes"
        " WHERE space_id = ? AND model_id = ? ORDER BY seq",
        space_id,
        model_id,
    )
    return [row_to(Push, row) for row in rows]


async def update_model(
    db: Database,
    space_id: str,
    model_id: str,
    audit: Audit,
    *,
    name: str | None = None,
    visibility: str | None = None,
) -> Model | None:
    """Rename a model or change its visibility, and return it."""
    async with db.transaction(audit) as conn:
        await conn.execute(
            "UPDATE models SET name = coalesce(?, name), visibility = coalesce(?, visibility),"
            " updated_at = ? WHERE space_id = ? AND id = ?",
            (name, visibility, db.now(), space_id, model_id),
        )
    return await get_model(db, space_id, model_id)

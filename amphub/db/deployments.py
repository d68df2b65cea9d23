"""Deployments of model versions to inference services, and the callbacks they sent."""

from __future__ import annotations

from amphub.db.core import Audit, Database, Deployment, fetch_all, fetch_one, row_to

__all__ = [
    "insert_deployment",
    "get_deployment",
    "list_deployments",
    "update_deployment",
    "delete_deployment",
    "remember_signature",
]

_COLUMNS = (
    "id, space_id, model_id, target, service, instance, status, replicas, ready_replicas, ref,"
    " commit_id, message, created_by, created_at, updated_at, deleted_at"
)


async def insert_deployment(
    db: Database,
    space_id: str,
    model_id: str,
    target: str,
    service: str,
    replicas: int,
    ref: str,
    commit_id: str,
    created_by: str,
    audit: Audit,
) -> Deployment:
    """A new deployment, pending until its target answers."""
    now = db.now()
    async with db.transaction(audit) as conn:
        cursor = await conn.execute(
            "INSERT INTO deployments (space_id, model_id, target, service, replicas, ref,"
            " commit_id, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (space_id, model_id, target, service, replicas, ref, commit_id, created_by, now, now),
        )
        (deployment_id,) = await cursor.fetchone()
    deployment = await get_deployment(db, deployment_id)
    assert deployment is not None
    return deployment


async def get_deployment(db: Database, deployment_id: int) -> Deployment | None:
    """One deployment, deleted or not."""
    row = await fetch_one(db, f"SELECT {_COLUMNS} FROM deployments WHERE id = ?", deployment_id)
    return row_to(Deployment, row) if row else None


async def list_deployments(db: Database, space_id: str, model_id: str) -> list[Deployment]:
    """The model's deployments that were not deleted, newest first."""
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM deployments"
        " WHERE space_id = ? AND model_id = ? AND deleted_at IS NULL ORDER BY id DESC",
        space_id,
        model_id,
    )
    return [row_to(Deployment, row) for row in rows]


async def update_deployment(
    db: Database,
    deployment_id: int,
    *,
    status: str | None = None,
    instance: str | None = None,
    ready_replicas: int | None = None,
    message: str | None = None,
) -> None:
    """Record what the target reported; fields left None keep their value."""
    await db.write(
        "UPDATE deployments SET status = coalesce(?, status), instance = coalesce(?, instance),"
        " ready_replicas = coalesce(?, ready_replicas), message = coalesce(?, message),"
        " updated_at = ? WHERE id = ?",
        (status, instance, ready_replicas, message, db.now(), deployment_id),
    )


async def delete_deployment(db: Database, deployment_id: int, audit: Audit) -> None:
    """Mark a deployment deleted: its key stops working."""
    async with db.transaction(audit) as conn:
        await conn.execute(
            "UPDATE deployments SET deleted_at = ?, updated_at = ? WHERE id = ?",
            (db.now(), db.now(), deployment_id),
        )


async def remember_signature(db: Database, signature: str, now: float, window: float) -> bool:
    """Record a callback's signature; False if it was seen before (a replay)."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM callback_signatures WHERE seen_at < ?", (now - window,))
        cursor = await conn.execute(
            "INSERT INTO callback_signatures (signature, seen_at) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            (signature, now),
        )
    return cursor.rowcount > 0

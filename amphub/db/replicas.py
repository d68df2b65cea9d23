"""Where each model was synced: zone, ref and the commit the replica holds."""

from __future__ import annotations

from amphub.db.core import Database, Replica, fetch_all, row_to

__all__ = ["record_replica", "list_replicas"]


async def record_replica(
    db: Database, space_id: str, model_id: str, zone: str, ref: str, commit_id: str
) -> None:
    """Remember that `zone` now holds `ref` of the model at `commit_id`."""
    await db.write(
        "INSERT INTO replicas (space_id, model_id, zone, ref, commit_id, synced_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (space_id, model_id, zone, ref)"
        " DO UPDATE SET commit_id = excluded.commit_id, synced_at = excluded.synced_at",
        (space_id, model_id, zone, ref, commit_id, db.now()),
    )


async def list_replicas(db: Database, space_id: str, model_id: str) -> list[Replica]:
    """The model's replicas, by zone and ref."""
    rows = await fetch_all(
        db,
        "SELECT zone, ref, commit_id, synced_at FROM replicas"
        " WHERE space_id = ? AND model_id = ? ORDER BY zone, ref",
        space_id,
        model_id,
    )
    return [row_to(Replica, row) for row in rows]

"""The audit log: read side (entries are written by the changes themselves)."""

from __future__ import annotations

from amphub.db.core import AuditEntry, Database, fetch_all, row_to

__all__ = ["list_audit"]


async def list_audit(
    db: Database, *, space_id: str | None = None, after: int = 0, limit: int = 100
) -> list[AuditEntry]:
    """Entries in the order they happened, optionally of one space, after sequence `after`."""
    rows = await fetch_all(
        db,
        "SELECT seq, at, actor, action, space_id, model_id, target, detail FROM audit"
        " WHERE seq > ? AND (? IS NULL OR space_id = ?) ORDER BY seq LIMIT ?",
        after,
        space_id,
        space_id,
        limit,
    )
    return [row_to(AuditEntry, row) for row in rows]

"""The task queue's rows, and the scan results kept per blob."""

from __future__ import annotations

from amphub.db.core import Database, Task, fetch_all, fetch_one, row_to

__all__ = [
    "insert_task",
    "get_task",
    "list_tasks",
    "last_scan",
    "claim_task",
    "requeue_interrupted",
    "hand_back_task",
    "count_unfinished_tasks",
    "set_task_progress",
    "finish_task",
    "cancel_task",
    "scan_verdicts",
    "store_verdict",
]


_COLUMNS = (
    "id, kind, space_id, model_id, ref, commit_id, params, status, progress, message, result,"
    " created_by, created_at, started_at, finished_at, attempts, cancel_requested, node"
)


async def insert_task(
    db: Database,
    kind: str,
    space_id: str,
    model_id: str,
    ref: str | None,
    commit_id: str | None,
    params: str,
    created_by: str,
) -> Task:
    """Queue a task."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO tasks (kind, space_id, model_id, ref, commit_id, params, created_by,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, space_id, model_id, ref, commit_id, params, created_by, db.now()),
        )
        (task_id,) = await cursor.fetchone()
    task = await get_task(db, task_id)
    assert task is not None
    return task


async def get_task(db: Database, task_id: int) -> Task | None:
    """One task."""
    row = await fetch_one(db, f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", task_id)
    return row_to(Task, row) if row else None


async def list_tasks(
    db: Database,
    *,
    kind: str | None = None,
    status: str | None = None,
    space_id: str | None = None,
    model_id: str | None = None,
    before: int | None = None,
    limit: int = 200,
) -> list[Task]:
    """Tasks, newest first, filtered; with `before`, only those older than that task id."""
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM tasks WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR status = ?)"
        " AND (? IS NULL OR space_id = ?) AND (? IS NULL OR model_id = ?)"
        " AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
        kind,
        kind,
        status,
        status,
        space_id,
        space_id,
        model_id,
        model_id,
        before,
        before,
        limit,
    )
    return [row_to(Task, row) for row in rows]


async def last_scan(
    db: Database,
    space_id: str,
    model_id: str,
    *,
    commit_id: str | None = None,
    ref: str | None = None,
) -> Task | None:
    """The model's newest finished scan of that commit, or of that ref (either given)."""
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM tasks WHERE kind = 'scan' AND status = 'succeeded'"
        " AND space_id = ? AND model_id = ? AND (? IS NULL OR commit_id = ?)"
        " AND (? IS NULL OR ref = ?) ORDER BY id DESC LIMIT 1",
        space_id,
        model_id,
        commit_id,
        commit_id,
        ref,
        ref,
    )
    return row_to(Task, rows[0]) if rows else None


async def claim_task(db: Database, node: str) -> Task | None:
    """Take the oldest queued task and mark it running on `node`, or None when there is none."""
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "UPDATE tasks SET status = 'running', started_at = ?, attempts = attempts + 1,"
                " node = ?"
                " WHERE id = (SELECT id FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1)"
                f" RETURNING {_COLUMNS}",
                (db.now(), node),
            )
        ).fetchone()
    return row_to(Task, row) if row else None


async def requeue_interrupted(db: Database, max_attempts: int) -> None:
    """After a restart: run again what was running, unless it has been tried too often."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET status = 'failed', finished_at = ?,"
            " message = 'stopped by a restart ' || attempts || ' times; not tried again'"
            " WHERE status = 'running' AND attempts >= ?",
            (db.now(), max_attempts),
        )
        await conn.execute(
            "UPDATE tasks SET status = 'queued', message = 'interrupted by a restart; queued again'"
            " WHERE status = 'running'"
        )


async def hand_back_task(db: Database, task_id: int) -> None:
    """Queue a running task again, its start not counted: its node stopped it on purpose."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET status = 'queued',"
            " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
            " message = 'handed back by a stopping node; queued again'"
            " WHERE id = ? AND status = 'running'",
            (task_id,),
        )


async def count_unfinished_tasks(db: Database) -> dict[str, int]:
    """How many tasks are queued and how many running."""
    rows = await fetch_all(
        db,
        "SELECT status, count(*) FROM tasks WHERE status IN ('queued', 'running') GROUP BY status",
    )
    return {"queued": 0, "running": 0} | {row[0]: row[1] for row in rows}


async def set_task_progress(db: Database, task_id: int, progress: int, message: str) -> bool:
    """Record progress; returns whether the task should stop: canceled, or its model gone."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET progress = ?, message = ? WHERE id = ?",
            (progress, message, task_id),
        )
        row = await (
            await conn.execute("SELECT cancel_requested FROM tasks WHERE id = ?", (task_id,))
        ).fetchone()
    return row is None or bool(row[0])


async def finish_task(
    db: Database, task_id: int, status: str, message: str, result: str | None = None
) -> None:
    """Close a task as succeeded, failed or canceled."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET status = ?, message = ?, result = coalesce(?, result),"
            " finished_at = ?, progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END"
            " WHERE id = ?",
            (status, message, result, db.now(), status, task_id),
        )


async def cancel_task(db: Database, task_id: int) -> Task | None:
    """Cancel a queued task now, or ask a running one to stop at its next check."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET status = 'canceled', finished_at = ?, message = 'canceled'"
            " WHERE id = ? AND status = 'queued'",
            (db.now(), task_id),
        )
        await conn.execute(
            "UPDATE tasks SET cancel_requested = 1 WHERE id = ? AND status = 'running'",
            (task_id,),
        )
    return await get_task(db, task_id)


async def scan_verdicts(db: Database, content_ids: list[str], version: str) -> dict[str, str]:
    """Stored verdicts (JSON) of the given blobs for a scanner version."""
    found: dict[str, str] = {}
    for start in range(0, len(content_ids), 500):
        part = content_ids[start : start + 500]
        rows = await fetch_all(
            db,
            "SELECT content_id, verdict FROM scan_results WHERE scanner_version = ?"
            f" AND content_id IN ({','.join('?' * len(part))})",
            version,
            *part,
        )
        found.update({row[0]: row[1] for row in rows})
    return found


async def store_verdict(db: Database, content_id: str, version: str, verdict: str) -> None:
    """Keep a blob's verdict so that the same content is never scanned twice."""
    await db.write(
        "INSERT INTO scan_results (content_id, scanner_version, verdict) VALUES (?, ?, ?)"
        " ON CONFLICT (content_id, scanner_version) DO UPDATE SET verdict = excluded.verdict",
        (content_id, version, verdict),
    )

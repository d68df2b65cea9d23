"""The task queue's rows, and the scan results kept per blob."""

from __future__ import annotations

from amphub.db.core import (
    Connection,
    Database,
    Task,
    fetch_all,
    fetch_one,
    look_up_one,
    row_to,
)

__all__ = [
    "insert_task",
    "get_task",
    "list_tasks",
    "latest_task",
    "last_scan",
    "claim_task",
    "claim_queued_task",
    "renew_leases",
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
    " created_by, created_at, started_at, finished_at, attempts, cancel_requested, node,"
    " lease_until"
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
    ref: str | None = None,
    before: int | None = None,
    limit: int = 200,
) -> list[Task]:
    """Tasks, newest first, filtered; with `before`, only those older than that task id."""
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM tasks WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR status = ?)"
        " AND (? IS NULL OR space_id = ?) AND (? IS NULL OR model_id = ?)"
        " AND (? IS NULL OR ref = ?) AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
        kind,
        kind,
        status,
        status,
        space_id,
        space_id,
        model_id,
        model_id,
        ref,
        ref,
        before,
        before,
        limit,
    )
    return [row_to(Task, row) for row in rows]


async def latest_task(
    db: Database,
    kind: str,
    space_id: str,
    model_id: str,
    *,
    ref: str | None = None,
    status: str | None = None,
) -> Task | None:
    """The model's newest task of a kind, of that ref and in that state where given."""
    # A mirrored model's every download asks: read through the model's index (a filter
    # that may be NULL, as in `list_tasks`, would walk the whole table newest first).
    row = await look_up_one(
        db,
        f"SELECT {_COLUMNS} FROM tasks WHERE space_id = ? AND model_id = ? AND kind = ?"
        " AND (? IS NULL OR ref = ?) AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT 1",
        space_id,
        model_id,
        kind,
        ref,
        ref,
        status,
        status,
    )
    return row_to(Task, row) if row else None


async def last_scan(
    db: Database,
    space_id: str,
    model_id: str,
    *,
    commit_id: str | None = None,
    ref: str | None = None,
    result: bool = True,
) -> Task | None:
    """The model's newest finished scan of that commit, or of that ref (either given).

    Without `result`, its result (every file's verdict: large for a model of many files)
    is not read and is None.
    """
    columns = _COLUMNS if result else _COLUMNS.replace(" result,", " NULL AS result,")
    row = await look_up_one(
        db,
        f"SELECT {columns} FROM tasks WHERE space_id = ? AND model_id = ? AND kind = 'scan'"
        " AND status = 'succeeded' AND (? IS NULL OR commit_id = ?)"
        " AND (? IS NULL OR ref = ?) ORDER BY id DESC LIMIT 1",
        space_id,
        model_id,
        commit_id,
        commit_id,
        ref,
        ref,
    )
    return row_to(Task, row) if row else None


# A running task whose node stopped renewing its lease (or that never had one: it was
# started before leases existed); the parameter is the current time.
_LAPSED = "status = 'running' AND (lease_until IS NULL OR lease_until < ?)"
# What a task that was interrupted too often says when it is given up.
_GIVEN_UP = (
    "'interrupted ' || attempts || ' times (its node restarted or was lost); not tried again'"
)
# The task a claim holds: the claim's node and start count (a takeover counts one more).
_HELD = "id = ? AND node = ? AND attempts = ? AND status = 'running'"


async def claim_task(
    db: Database, node: str, now: str, lease_until: str, max_attempts: int
) -> Task | None:
    """Take the oldest queued task, or a running one whose lease lapsed, for `node`.

    A lapsed task that was canceled, or has been started `max_attempts` times, is closed
    instead. `now` and `lease_until` are wall-clock times (RFC 3339) on every node.
    """
    # Two nodes never take one task: PostgreSQL locks the chosen row and skips rows other
    # claims hold; SQLite runs one write transaction at a time.
    skip_locked = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
    async with db.transaction() as conn:
        await _close_given_up(db, conn, _LAPSED, (now,), max_attempts)
        row = await (
            await conn.execute(
                "UPDATE tasks SET message = CASE WHEN status = 'running'"
                " THEN 'taken over from node ' || node || ', whose lease lapsed' ELSE message END,"
                " status = 'running', started_at = ?, attempts = attempts + 1, node = ?,"
                " lease_until = ?"
                " WHERE id = (SELECT id FROM tasks WHERE status IN ('queued', 'running')"
                " AND (status = 'queued' OR lease_until IS NULL OR lease_until < ?)"
                f" ORDER BY id LIMIT 1{skip_locked})"
                f" RETURNING {_COLUMNS}",
                (db.now(), node, lease_until, now),
            )
        ).fetchone()
    return row_to(Task, row) if row else None


async def claim_queued_task(db: Database, task_id: int, node: str, lease_until: str) -> Task | None:
    """Take one task for `node` if it is still queued; None if a node took it first."""
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "UPDATE tasks SET status = 'running', started_at = ?, attempts = attempts + 1,"
                " node = ?, lease_until = ? WHERE id = ? AND status = 'queued'"
                f" RETURNING {_COLUMNS}",
                (db.now(), node, lease_until, task_id),
            )
        ).fetchone()
    return row_to(Task, row) if row else None


async def _close_given_up(
    db: Database,
    conn: Connection,
    where: str,
    params: tuple[object, ...],
    max_attempts: int,
) -> None:
    """Close the interrupted tasks `where` picks that were canceled or tried too often."""
    await conn.execute(
        "UPDATE tasks SET status = 'canceled', finished_at = ?, message = 'canceled'"
        f" WHERE {where} AND cancel_requested = 1",
        (db.now(), *params),
    )
    await conn.execute(
        f"UPDATE tasks SET status = 'failed', finished_at = ?, message = {_GIVEN_UP}"
        f" WHERE {where} AND attempts >= ?",
        (db.now(), *params, max_attempts),
    )


async def renew_leases(
    db: Database, node: str, task_ids: list[int], lease_until: str
) -> dict[int, tuple[int, bool]]:
    """Extend the leases of the tasks `node` runs (at least one): {id: (attempts, canceled)}.

    A task missing from the answer is no longer the node's: taken over, or deleted with its
    model. One statement for all of them.
    """
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                "UPDATE tasks SET lease_until = ? WHERE node = ? AND status = 'running'"
                f" AND id IN ({','.join('?' * len(task_ids))})"
                " RETURNING id, attempts, cancel_requested",
                (lease_until, node, *task_ids),
            )
        ).fetchall()
    return {row[0]: (row[1], bool(row[2])) for row in rows}


async def requeue_interrupted(db: Database, node: str, now: str, max_attempts: int) -> None:
    """At start: run again what this node ran in its earlier life, and what lost its lease.

    A task another live node runs is left alone; one canceled meanwhile is closed, and one
    tried too often fails instead.
    """
    mine_or_lapsed = f"status = 'running' AND (node = ? OR {_LAPSED})"
    async with db.transaction() as conn:
        await _close_given_up(db, conn, mine_or_lapsed, (node, now), max_attempts)
        await conn.execute(
            "UPDATE tasks SET status = 'queued', lease_until = NULL,"
            " message = 'interrupted by a restart; queued again'"
            f" WHERE {mine_or_lapsed}",
            (node, now),
        )


async def hand_back_task(db: Database, task: Task) -> None:
    """Queue a running task again, its start not counted: its node stopped it on purpose."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET status = 'queued', attempts = attempts - 1, lease_until = NULL,"
            " message = 'handed back by a stopping node; queued again'"
            f" WHERE {_HELD}",
            (task.id, task.node, task.attempts),
        )


async def count_unfinished_tasks(db: Database) -> dict[str, int]:
    """How many tasks are queued and how many running."""
    rows = await fetch_all(
        db,
        "SELECT status, count(*) FROM tasks WHERE status IN ('queued', 'running') GROUP BY status",
    )
    return {"queued": 0, "running": 0} | {row[0]: row[1] for row in rows}


async def set_task_progress(db: Database, task: Task, progress: int, message: str) -> bool | None:
    """Record progress of the claim `task`; whether it was canceled, None if it is not held.

    A task no longer held was taken over by another node, or went with its model.
    """
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                f"UPDATE tasks SET progress = ?, message = ? WHERE {_HELD}"
                " RETURNING cancel_requested",
                (progress, message, task.id, task.node, task.attempts),
            )
        ).fetchone()
    return None if row is None else bool(row[0])


async def finish_task(
    db: Database, task: Task, status: str, message: str, result: str | None = None
) -> bool:
    """Close the claim `task` as succeeded, failed or canceled; False if it is not held.

    Only the claim that holds a task closes it, so a task taken over is finished once.
    """
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE tasks SET status = ?, message = ?, result = coalesce(?, result),"
            " finished_at = ?, lease_until = NULL,"
            " progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END"
            f" WHERE {_HELD}",
            (status, message, result, db.now(), status, task.id, task.node, task.attempts),
        )
    return cursor.rowcount == 1


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

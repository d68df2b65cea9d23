"""Queueing a task: the row in the database, and a wake-up for an idle worker."""

from __future__ import annotations

import asyncio
import json

from amphub import db


class TaskQueue:
    """Wakes the workers when a task is queued."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()

    async def enqueue(
        self,
        database: db.Database,
        kind: str,
        model: db.Model,
        ref: str | None,
        commit_id: str | None,
        params: dict,
        created_by: str,
    ) -> db.Task:
        """Queue a task and wake a worker."""
        task = await db.insert_task(
            database,
            kind,
            model.space_id,
            model.id,
            ref,
            commit_id,
            json.dumps(params),
            created_by,
        )
        self.wake.set()
        return task

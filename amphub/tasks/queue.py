"""The task queue: rows in SQLite, N workers in the server process, crash-safe.

A task that was running when the process died is queued again at start; after
`MAX_ATTEMPTS` starts it fails with a message instead. Cancelling a running task asks it to
stop; it does at its next progress report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from amphub import db, keys

log = logging.getLogger("amphub.tasks")
MAX_ATTEMPTS = 3
FINISHED_STATES = ("succeeded", "failed", "canceled")
IDLE_POLL_SECONDS = 1.0


class TaskCanceled(Exception):
    """Raised inside a task whose cancellation was asked for."""


class TaskFailed(Exception):
    """A task's own failure, with a sentence for the user."""


@dataclass
class TaskContext:
    """What a running task may use: the app, its row, and progress reports."""

    app: web.Application
    task: db.Task

    @property
    def params(self) -> dict:
        """The parameters the task was queued with."""
        return json.loads(self.task.params)

    async def progress(self, done: int, total: int, message: str) -> None:
        """Report progress; raises TaskCanceled if the task should stop."""
        percent = 100 * done // total if total else 0
        if await db.set_task_progress(self.app[keys.DB], self.task.id, min(percent, 99), message):
            raise TaskCanceled


Runner = Callable[[TaskContext], Awaitable[dict]]


class TaskQueue:
    """Wakes the workers when a task is queued."""

    def __init__(self, runners: dict[str, Runner]) -> None:
        self.runners = runners
        self._wake = asyncio.Event()

    async def enqueue(
        self,
        app: web.Application,
        kind: str,
        model: db.Model,
        ref: str | None,
        commit_id: str | None,
        params: dict,
        created_by: str,
    ) -> db.Task:
        """Queue a task and wake a worker."""
        task = await db.insert_task(
            app[keys.DB],
            kind,
            model.space_id,
            model.id,
            ref,
            commit_id,
            json.dumps(params),
            created_by,
        )
        self._wake.set()
        return task

    async def work(self, app: web.Application) -> None:
        """One worker: run queued tasks one after another, forever."""
        while True:
            task = await db.claim_task(app[keys.DB])
            if task is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                continue
            await self._run(app, task)

    async def _run(self, app: web.Application, task: db.Task) -> None:
        database = app[keys.DB]
        runner = self.runners.get(task.kind)
        try:
            if runner is None:
                raise TaskFailed(f"unknown task kind {task.kind}")
            result = await runner(TaskContext(app, task))
        except TaskCanceled:
            await db.finish_task(database, task.id, "canceled", "canceled")
        except TaskFailed as exc:
            await db.finish_task(database, task.id, "failed", str(exc))
        except asyncio.CancelledError:
            raise  # the server is stopping: the task stays running and is resumed at start
        except Exception:
            log.exception("task %s (%s) failed", task.id, task.kind)
            await db.finish_task(database, task.id, "failed", "failed: internal error")
        else:
            await db.finish_task(database, task.id, "succeeded", "done", json.dumps(result))


async def run_workers(app: web.Application) -> AsyncIterator[None]:
    """Requeue interrupted tasks, then run the configured number of workers."""
    await db.requeue_interrupted(app[keys.DB], MAX_ATTEMPTS)
    queue = app[keys.TASKS]
    workers = [
        asyncio.create_task(queue.work(app), name=f"task worker {n}")
        for n in range(app[keys.CONFIG].workers)
    ]
    yield
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)

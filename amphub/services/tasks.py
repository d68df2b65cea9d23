"""The task workers: rows in the database, N workers in the server process, crash-safe.

A task that was running when the process died is queued again at start; after
`MAX_ATTEMPTS` starts it fails with a message instead. A node that is stopping (SIGTERM)
hands its running tasks back to the queue at once, their start not counted. Cancelling a
running task asks it to stop; it does at its next progress report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from amphub import db
from amphub.services.hub import Hub

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
    """What a running task may use: the hub, its row, and progress reports."""

    hub: Hub
    task: db.Task

    @property
    def params(self) -> dict[str, Any]:
        """The parameters the task was queued with."""
        params: dict[str, Any] = json.loads(self.task.params)
        return params

    def revision(self) -> tuple[str, str]:
        """(ref, commit id) the task was queued on; the kinds that read files all have one."""
        task = self.task
        if task.ref is None or task.commit_id is None:
            raise TaskFailed(f"task {task.id} was queued on no revision")
        return task.ref, task.commit_id

    async def progress(self, done: int, total: int, message: str) -> None:
        """Report progress; raises TaskCanceled if the task should stop."""
        percent = 100 * done // total if total else 0
        if await db.set_task_progress(self.hub.db, self.task.id, min(percent, 99), message):
            raise TaskCanceled


Runner = Callable[[TaskContext], Awaitable[dict[str, Any]]]


async def enqueue(
    hub: Hub,
    kind: str,
    model: db.Model,
    ref: str | None,
    commit_id: str | None,
    params: dict[str, Any],
    created_by: str,
) -> db.Task:
    """Queue a task on a model and wake an idle worker."""
    task = await db.insert_task(
        hub.db, kind, model.space_id, model.id, ref, commit_id, json.dumps(params), created_by
    )
    hub.tasks.wake()
    return task


async def work(hub: Hub, runners: Mapping[str, Runner]) -> None:
    """One worker: run queued tasks one after another, forever."""
    while True:
        task = await db.claim_task(hub.db, hub.config.node)
        if task is None:
            await hub.tasks.idle(IDLE_POLL_SECONDS)
            continue
        await _run(hub, runners, task)


async def _run(hub: Hub, runners: Mapping[str, Runner], task: db.Task) -> None:
    outcome = await _outcome(hub, runners, task)
    hub.metrics.task_outcomes.labels(task.kind, outcome).inc()


async def _outcome(hub: Hub, runners: Mapping[str, Runner], task: db.Task) -> str:
    """Run a task and record how it ended; returns that outcome."""
    runner = runners.get(task.kind)
    try:
        if runner is None:
            raise TaskFailed(f"unknown task kind {task.kind}")
        result = await runner(TaskContext(hub, task))
    except TaskCanceled:
        await db.finish_task(hub.db, task.id, "canceled", "canceled")
        return "canceled"
    except TaskFailed as exc:
        await db.finish_task(hub.db, task.id, "failed", str(exc))
        return "failed"
    except asyncio.CancelledError:
        # The node is stopping: the task goes back to the queue for the next start (or
        # another node). Were this write cut short too, start-up requeues it all the same.
        await db.hand_back_task(hub.db, task.id)
        hub.metrics.task_outcomes.labels(task.kind, "handed_back").inc()
        raise
    except Exception:
        log.exception("task %s (%s) failed", task.id, task.kind)
        await db.finish_task(hub.db, task.id, "failed", "failed: internal error")
        return "failed"
    await db.finish_task(hub.db, task.id, "succeeded", "done", json.dumps(result))
    return "succeeded"


@contextlib.asynccontextmanager
async def running_workers(hub: Hub, runners: Mapping[str, Runner]) -> AsyncIterator[None]:
    """Requeue interrupted tasks, then run the configured number of workers.

    They stop at the end of the block, or earlier when the server begins to shut down.
    """
    await db.requeue_interrupted(hub.db, MAX_ATTEMPTS)
    hub.tasks.add_workers(
        asyncio.create_task(work(hub, runners), name=f"task worker {n}")
        for n in range(hub.config.workers)
    )
    try:
        yield
    finally:
        await hub.tasks.stop_workers()

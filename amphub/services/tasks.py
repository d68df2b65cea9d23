"""The task workers: rows in the database, N workers in each node, crash-safe.

A node claims a task with a lease (`task_lease_seconds`) and renews the leases of the tasks
it runs every third of that. A task whose lease lapsed (its node died) is taken over by
any node; one that its own node ran in an earlier life is queued again when that node
starts. After `MAX_ATTEMPTS` starts a task fails with a message instead. A node that is
stopping (SIGTERM) hands its running tasks back to the queue at once, their start not
counted. Cancelling a running task, through any node, asks it to stop; it does at its next
progress report or lease renewal. Only the claim that holds a task records its outcome:
a node whose task was taken over stops working on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from amphub import db
from amphub.clock import rfc3339, system_clock
from amphub.config import Config
from amphub.services.hub import Hub

log = logging.getLogger("amphub.tasks")
MAX_ATTEMPTS = 3
FINISHED_STATES = ("succeeded", "failed", "canceled")
IDLE_POLL_SECONDS = 1.0


class TaskCanceled(Exception):
    """Raised inside a task whose cancellation was asked for."""


class TaskFailed(Exception):
    """A task's own failure, with a sentence for the user."""


class TaskLost(Exception):
    """Raised inside a task this node no longer holds: taken over, or deleted with its model."""


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
        canceled = await db.set_task_progress(self.hub.db, self.task, min(percent, 99), message)
        if canceled is None:
            raise TaskLost
        if canceled:
            raise TaskCanceled


Runner = Callable[[TaskContext], Coroutine[Any, Any, dict[str, Any]]]


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


def lease_times(config: Config) -> tuple[str, str]:
    """The time now and when a lease taken now lapses.

    The wall clock, not the hub's: a lease measures how long a node has been silent, and
    the hub's clock is the one tests move by days.
    """
    now = system_clock()
    return rfc3339(now), rfc3339(now + timedelta(seconds=config.task_lease_seconds))


async def work(hub: Hub, runners: Mapping[str, Runner]) -> None:
    """One worker: run queued tasks one after another, forever."""
    while True:
        now, lease_until = lease_times(hub.config)
        task = await db.claim_task(hub.db, hub.config.node, now, lease_until, MAX_ATTEMPTS)
        if task is None:
            await hub.tasks.idle(IDLE_POLL_SECONDS)
            continue
        await _run(hub, runners, task)


async def keep_leases(hub: Hub) -> None:
    """Renew the leases of the tasks this node runs; stop those canceled or taken over."""
    while True:
        await asyncio.sleep(hub.config.task_lease_seconds / 3)
        held = hub.tasks.held()
        if not held:
            continue
        try:
            renewed = await db.renew_leases(
                hub.db, hub.config.node, list(held), lease_times(hub.config)[1]
            )
        except Exception:
            log.exception("renewing the leases of tasks %s failed", sorted(held))
            continue
        for task_id, attempts in held.items():
            found = renewed.get(task_id)
            if found is None or found[0] != attempts:
                hub.tasks.stop(task_id, TaskLost())
            elif found[1]:
                hub.tasks.stop(task_id, TaskCanceled())


async def _run(hub: Hub, runners: Mapping[str, Runner], task: db.Task) -> None:
    outcome = await _outcome(hub, runners, task)
    hub.metrics.task_outcomes.labels(task.kind, outcome).inc()


async def _outcome(hub: Hub, runners: Mapping[str, Runner], task: db.Task) -> str:
    """Run a task and record how it ended; returns that outcome."""
    runner = runners.get(task.kind)
    try:
        if runner is None:
            raise TaskFailed(f"unknown task kind {task.kind}")
        result = await _job(hub, task, runner)
    except TaskCanceled:
        return await _finish(hub, task, "canceled", "canceled")
    except TaskFailed as exc:
        return await _finish(hub, task, "failed", str(exc))
    except TaskLost:
        log.warning("task %s (%s) was taken over or deleted; stopped here", task.id, task.kind)
        return "lost"
    except asyncio.CancelledError:
        # The node is stopping: the task goes back to the queue for the next start (or
        # another node). Were this write cut short too, its lease lapses all the same.
        await db.hand_back_task(hub.db, task)
        hub.metrics.task_outcomes.labels(task.kind, "handed_back").inc()
        raise
    except Exception:
        log.exception("task %s (%s) failed", task.id, task.kind)
        return await _finish(hub, task, "failed", "failed: internal error")
    return await _finish(hub, task, "succeeded", "done", json.dumps(result))


async def _job(hub: Hub, task: db.Task, runner: Runner) -> dict[str, Any]:
    """The runner's result, run as a job that the lease keeper may stop."""
    job = hub.tasks.start(task.id, task.attempts, runner(TaskContext(hub, task)))
    try:
        result: dict[str, Any] = await job.work
    except asyncio.CancelledError:
        worker = asyncio.current_task()
        if job.stopped_for is None or (worker is not None and worker.cancelling()):
            raise  # the node is stopping
        raise job.stopped_for from None
    finally:
        hub.tasks.forget(task.id)
    return result


async def _finish(
    hub: Hub, task: db.Task, status: str, message: str, result: str | None = None
) -> str:
    """Record the outcome, if this claim still holds the task; returns the outcome counted."""
    if await db.finish_task(hub.db, task, status, message, result):
        hub.tasks.finished()
        return status
    log.warning("task %s (%s) was taken over or deleted; outcome dropped", task.id, task.kind)
    return "lost"


async def run_here(hub: Hub, runners: Mapping[str, Runner], task: db.Task) -> db.Task:
    """Run a queued task in this process (an offline command's), unless a node took it first.

    Returns the task's row once it finished, here or on the node that took it.
    """
    _, lease_until = lease_times(hub.config)
    claimed = await db.claim_queued_task(hub.db, task.id, hub.config.node, lease_until)
    if claimed is not None:
        keeper = asyncio.create_task(keep_leases(hub), name="task leases")
        try:
            await _run(hub, runners, claimed)
        finally:
            keeper.cancel()
    while True:
        row = await db.get_task(hub.db, task.id)
        if row is None or row.status in FINISHED_STATES:
            return row or task
        await asyncio.sleep(IDLE_POLL_SECONDS)


@contextlib.asynccontextmanager
async def running_workers(hub: Hub, runners: Mapping[str, Runner]) -> AsyncIterator[None]:
    """Requeue this node's interrupted tasks, then run its workers and its lease keeper.

    They stop at the end of the block, or earlier when the server begins to shut down.
    """
    now, _ = lease_times(hub.config)
    await db.requeue_interrupted(hub.db, hub.config.node, now, MAX_ATTEMPTS)
    hub.tasks.add_workers(
        asyncio.create_task(work(hub, runners), name=f"task worker {n}")
        for n in range(hub.config.workers)
    )
    hub.tasks.add_workers([asyncio.create_task(keep_leases(hub), name="task leases")])
    try:
        yield
    finally:
        await hub.tasks.stop_workers()

"""The task queue's signal, workers and jobs: the queue itself is the tasks table."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class Job:
    """A task this node runs: its claim's start count, its work, and why the node stopped it."""

    attempts: int
    work: asyncio.Task[Any]
    stopped_for: Exception | None = None


class TaskQueue:
    """Wakes the workers when a task is queued (they also look every few seconds); stops them.

    It also knows the tasks this node runs, for the lease keeper to renew or stop.
    """

    def __init__(self) -> None:
        self._queued = asyncio.Event()
        self._finished = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._jobs: dict[int, Job] = {}

    def wake(self) -> None:
        """Tell the workers a task was queued."""
        self._queued.set()

    async def idle(self, seconds: float) -> None:
        """Wait until a task is queued, or for `seconds` at most."""
        self._queued.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), seconds)

    def finished(self) -> None:
        """Tell those waiting for a task of this node to end that one did."""
        self._finished.set()
        self._finished = asyncio.Event()

    async def a_task_finished(self, seconds: float) -> None:
        """Wait until a task of this node ends, or for `seconds` at most."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), seconds)

    def add_workers(self, workers: Iterable[asyncio.Task[None]]) -> None:
        """Keep the running workers, for `stop_workers`."""
        self._workers.extend(workers)

    async def stop_workers(self) -> None:
        """Cancel the workers (each hands its task back) and wait for them; again does nothing."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    def start(self, task_id: int, attempts: int, work: Coroutine[Any, Any, Any]) -> Job:
        """Run a claimed task's work as a job of its own, which `stop` can end."""
        job = Job(attempts, asyncio.create_task(work))
        self._jobs[task_id] = job
        return job

    def forget(self, task_id: int) -> None:
        """The task's job is over."""
        self._jobs.pop(task_id, None)

    def held(self) -> dict[int, int]:
        """The tasks this node runs, by id, with the start count of each one's claim."""
        return {task_id: job.attempts for task_id, job in self._jobs.items()}

    def stop(self, task_id: int, reason: Exception) -> None:
        """End a task's job; its worker raises `reason` instead of the job's outcome."""
        job = self._jobs.get(task_id)
        if job is not None and job.work.cancel():
            job.stopped_for = reason

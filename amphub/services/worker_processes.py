"""Worker processes for short CPU-bound jobs, each job with a time budget.

A thread cannot be stopped, and a `ProcessPoolExecutor` breaks as a whole when one of its
processes is killed; so each worker here is a process of its own on a pipe, and a job past
its budget ends its own process (a new one starts for the next job), nobody else's job.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")
PARENT_CHECK_SECONDS = 0.5


class JobFailed(Exception):
    """A job raised in its worker process, or the process died under it."""


def leave_with_parent(parent: int) -> None:
    """Make this worker process end soon after the server that started it, however it ended.

    A pool's process holds both ends of its work queue, so it never sees the server go:
    after a `kill -9` it would stay, working and then waiting, for ever.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def _serve(jobs: Connection, parent: int) -> None:
    """A worker process: run each job sent on the pipe and send back its answer."""
    leave_with_parent(parent)
    while True:
        try:
            work, args = jobs.recv()
        except EOFError:
            return
        try:
            jobs.send((True, work(*args)))
        except Exception as exc:  # the server logs it; the worker lives on
            jobs.send((False, f"{type(exc).__name__}: {exc}"))


class _Worker:
    """One worker process, started on its first job and again after it was killed."""

    def __init__(self) -> None:
        self._process: BaseProcess | None = None
        self._jobs: Connection | None = None

    def call(self, budget: float, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        """`work(*args)` in the process; TimeoutError (the process killed) past `budget`."""
        if self._process is None or self._jobs is None:
            self._jobs, theirs = get_context("spawn").Pipe()
            self._process = get_context("spawn").Process(
                target=_serve, args=(theirs, os.getpid()), name="amphub worker", daemon=True
            )
            self._process.start()
            theirs.close()
        try:
            self._jobs.send((work, args))
            answered = self._jobs.poll(budget)
            if answered:
                done, answer = self._jobs.recv()
        except (EOFError, OSError):
            self.stop()
            raise JobFailed("the worker process died") from None
        if not answered:
            self.stop()
            raise TimeoutError(f"the job ran past {budget:g} s")
        if not done:
            raise JobFailed(answer)
        return answer  # type: ignore[no-any-return]  # what `work` returned

    def kill(self) -> None:
        """Signal the process to end; `call` or `stop` then collects it."""
        process = self._process  # `call` may be clearing it on its thread
        if process is not None:
            process.kill()

    def stop(self) -> None:
        """End the process and close the pipe."""
        if self._process is not None and self._jobs is not None:
            self._process.kill()
            self._process.join()
            self._jobs.close()
        self._process = self._jobs = None


class WorkerProcesses:
    """A fixed number of worker processes; a job waits for a free one."""

    def __init__(self, count: int, run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]]):
        self._run_blocking = run_blocking
        self._workers = [_Worker() for _ in range(count)]
        self._free: asyncio.Queue[_Worker] = asyncio.Queue()
        for worker in self._workers:
            self._free.put_nowait(worker)
        self.timeouts = 0

    async def run(self, budget: float, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a worker process; TimeoutError when it ran past `budget` seconds.

        The budget starts when a worker takes the job, so waiting for a free one or for a
        new process to start does not count. `work` must be a module-level function.
        """
        worker = await self._free.get()
        # The thread owns the worker until the job ends, even if this caller goes away.
        job = asyncio.ensure_future(self._run_blocking(lambda: worker.call(budget, work, args)))
        job.add_done_callback(lambda _: self._free.put_nowait(worker))
        try:
            return await asyncio.shield(job)
        except TimeoutError:
            self.timeouts += 1
            raise

    async def close(self) -> None:
        """End every worker process; a job still running ends with JobFailed."""
        for worker in self._workers:
            worker.kill()
        while not self._free.empty():
            await self._run_blocking(self._free.get_nowait().stop)

"""The task queue's signal and workers: the queue itself is the tasks table."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class TaskQueue:
    """Wakes the workers when a task is queued (they also look every few seconds); stops them."""

    def __init__(self) -> None:
        self._queued = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Tell the workers a task was queued."""
        self._queued.set()

    async def idle(self, seconds: float) -> None:
        """Wait until a task is queued, or for `seconds` at most."""
        self._queued.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), seconds)

    def add_workers(self, workers: Iterable[asyncio.Task[None]]) -> None:
        """Keep the running workers, for `stop_workers`."""
        self._workers.extend(workers)

    async def stop_workers(self) -> None:
        """Cancel the workers (each hands its task back) and wait for them; again does nothing."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

"""The task queue's signal: the queue itself is the tasks table, this wakes an idle worker."""

from __future__ import annotations

import asyncio
import contextlib


class TaskQueue:
    """Wakes the workers when a task is queued; they also look every few seconds."""

    def __init__(self) -> None:
        self._queued = asyncio.Event()

    def wake(self) -> None:
        """Tell the workers a task was queued."""
        self._queued.set()

    async def idle(self, seconds: float) -> None:
        """Wait until a task is queued, or for `seconds` at most."""
        self._queued.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), seconds)

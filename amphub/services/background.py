"""Short background steps of the server, awaited or cancelled when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("amphub")
T = TypeVar("T")


class Background:
    """Keeps the asyncio tasks it starts, so none is lost or left running at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start a step; its failure is logged, never lost."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception():
            log.error("background step %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every step started so far."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel_all(self) -> None:
        """Cancel every step and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def every(
    seconds: float, step: Callable[[], Awaitable[object]], name: str
) -> AsyncIterator[None]:
    """Run `step` at once and then every `seconds` while the block runs; failures are logged."""

    async def loop() -> None:
        while True:
            try:
                await step()
            except Exception:
                log.exception("%s failed", name)
            await asyncio.sleep(seconds)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

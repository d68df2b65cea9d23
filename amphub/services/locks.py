"""Keyed locks (held across the hub's nodes), and objects waiting to be linked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

Key = tuple[str, ...]


def _alone(name: str) -> AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()


class KeyedLocks:
    """One lock per key: an asyncio lock in the process, and `across` the hub's nodes.

    The asyncio lock is dropped again when nobody holds or waits for it. `across` is the
    database's (`Database.exclusive`) once it is open: on PostgreSQL an advisory lock, so
    that two nodes never hold one key together; a process waits for it only while holding
    its own key's asyncio lock, so a node takes at most one database lock per key.
    """

    def __init__(self) -> None:
        self._locks: dict[Key, tuple[asyncio.Lock, int]] = {}
        self.across: Callable[[str], AbstractAsyncContextManager[None]] = _alone

    @contextlib.asynccontextmanager
    async def hold(self, key: Key) -> AsyncIterator[None]:
        """Hold the lock of `key` for the length of a block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock, self.across("/".join(key)):
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def busy(self, key: Key) -> bool:
        """Whether someone holds or waits for the lock of `key`."""
        return key in self._locks


def one_node_at_a_time(
    locks: KeyedLocks, name: str, step: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[object]]:
    """A background sweep that never runs on two nodes at once (the others wait their turn)."""

    async def run() -> object:
        async with locks.hold(("sweep", name)):
            return await step()

    return run


@dataclass
class LinkBatch:
    """Stored objects of one model that wait together for the space's quota lock to be linked."""

    sizes: dict[str, int]
    linked: asyncio.Task[None]

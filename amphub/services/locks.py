"""What the process coordinates in memory: keyed locks, and objects waiting to be linked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass


class KeyedLocks:
    """One asyncio lock per key, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold the lock of `key` for the length of a block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def busy(self, key: Hashable) -> bool:
        """Whether someone holds or waits for the lock of `key`."""
        return key in self._locks


@dataclass
class LinkBatch:
    """Stored objects of one model that wait together for the space's quota lock to be linked."""

    sizes: dict[str, int]
    linked: asyncio.Task[None]

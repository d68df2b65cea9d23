"""What the process coordinates in memory: keyed locks, claims on objects, reservations."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Set
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


class Claims:
    """Objects that uploads are storing and linking: garbage collection leaves them alone."""

    def __init__(self) -> None:
        self._count: Counter[str] = Counter()

    @contextlib.contextmanager
    def claim(self, oid: str) -> Iterator[None]:
        """Claim an object for the length of a block (claims of one object add up)."""
        self._count[oid] += 1
        try:
            yield
        finally:
            self._count[oid] -= 1
            if not self._count[oid]:
                del self._count[oid]

    def claimed(self, oid: str) -> bool:
        """Whether some upload is storing or linking the object now."""
        return oid in self._count


@dataclass
class LinkBatch:
    """Stored objects of one model that wait together for the space's quota lock to be linked."""

    sizes: dict[str, int]
    linked: asyncio.Task[None]


@dataclass
class _Reservation:
    size: int
    expires: float


class Reservations:
    """Bytes promised to uploads in flight, per space and object, until they end or expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._by_space: dict[str, dict[str, _Reservation]] = {}

    def _live(self, space_id: str) -> dict[str, _Reservation]:
        now = self.clock()
        entries = self._by_space.get(space_id, {})
        for oid in [oid for oid, r in entries.items() if r.expires <= now]:
            del entries[oid]
        return entries

    def reserved(self, space_id: str, *, excluding: Set[str] = frozenset()) -> int:
        """Bytes reserved in the space, leaving out the given objects."""
        return sum(r.size for oid, r in self._live(space_id).items() if oid not in excluding)

    def oids(self, space_id: str) -> set[str]:
        """The objects with a live reservation in the space."""
        return set(self._live(space_id))

    def holds(self, space_id: str, oid: str) -> bool:
        """Whether an upload of `oid` into the space has a live reservation."""
        # Asked twice per upload: looked up alone, not by expiring every other reservation.
        entry = self._by_space.get(space_id, {}).get(oid)
        return entry is not None and entry.expires > self.clock()

    def reserve(self, space_id: str, sizes: dict[str, int], ttl: float) -> None:
        """Reserve (or renew) the bytes of each object for `ttl` seconds."""
        entries = self._by_space.setdefault(space_id, {})
        expires = self.clock() + ttl
        for oid, size in sizes.items():
            entries[oid] = _Reservation(size, expires)

    def release(self, space_id: str, oid: str) -> None:
        """Give back the reservation of one object."""
        entries = self._by_space.get(space_id, {})
        entries.pop(oid, None)
        if not entries:
            self._by_space.pop(space_id, None)

"""A least-recently-used cache bounded by the total size of what it holds."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLru(Generic[K, V]):
    """Values by key; past `capacity` in total size, the least recently used go first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._size = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep `value`, of `size`, unless it alone is larger than the whole cache."""
        if size > self.capacity:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._size -= old[1]
        self._entries[key] = (value, size)
        self._size += size
        while self._size > self.capacity:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._size -= dropped

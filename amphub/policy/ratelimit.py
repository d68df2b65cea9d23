"""Failed sign-ins counted per client address, so that guessing keys is slowed to a crawl."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailedSignIns:
    """Refuses an address for a while after `limit` failures inside `window` seconds.

    Other addresses are never affected. Memory is bounded: at most `max_addresses` are
    tracked, the stalest forgotten first.
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 300.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address, deque())
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(address, None)
        return failures

    def retry_after(self, address: str) -> float:
        """Seconds until the address may try again; 0 when it may now."""
        failures = self._recent(address)
        if len(failures) < self.limit:
            return 0.0
        return max(failures[-self.limit] + self.window - self.clock(), 0.0)

    def record_failure(self, address: str) -> None:
        """Count one more failed attempt from the address."""
        failures = self._recent(address)
        if not failures:
            if len(self._failures) >= self.max_addresses:
                stalest = min(self._failures, key=lambda a: self._failures[a][-1])
                del self._failures[stalest]
            self._failures[address] = failures
        failures.append(self.clock())
        while len(failures) > self.limit:
            failures.popleft()

"""One lock per repository, taken by worker threads while they move refs."""

from __future__ import annotations

import threading
from pathlib import Path


class RepoLocks:
    """Hands out the same `threading.Lock` for the same repository path."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}

    def for_repo(self, path: Path) -> threading.Lock:
        """The lock of the repository at `path`."""
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())

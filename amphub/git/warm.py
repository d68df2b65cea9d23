"""After a push, the packs the next clones read are made in the background."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path

from amphub.git.upload import warm_clone_cache
from amphub.services.hub import Hub

log = logging.getLogger("amphub.git")


class CloneWarmer:
    """Warms the clone cache of pushed repositories, one at a time, off the event loop.

    A repository pushed again while it waits is warmed once; pushed while it is being
    warmed, it is warmed again after (for its new refs). A clone never waits for a
    repository still in the queue: it makes its pack itself, as without the warmer.
    """

    def __init__(self) -> None:
        self._queue: dict[Path, Hub] = {}  # in push order
        self._worker: asyncio.Task[None] | None = None

    def pushed(self, hub: Hub, path: Path) -> None:
        """Queue a repository whose refs moved (on the event loop)."""
        self._queue[path] = hub
        if self._worker is None or self._worker.done():
            self._worker = hub.background.spawn(self._drain(), "warm clone packs")

    async def _drain(self) -> None:
        while self._queue:
            path = next(iter(self._queue))
            hub = self._queue.pop(path)
            try:
                await hub.run_blocking(partial(warm_clone_cache, path))
            except Exception:
                # Only time is lost: the next clone makes what this did not.
                log.exception("warming the clone packs of %s failed", path)

"""Small objects stored in groups, two disk flushes a group however many objects it holds.

Uploads that arrive while a group is being written wait for the next group: the busier
the server, the larger the groups, and one thread does the file work instead of one per
upload, each taking the GIL back after every system call.
"""

from __future__ import annotations

import asyncio

from amphub.storage.objects import ObjectStore


class SmallWrites:
    """Writes objects received whole into the store, one group at a time."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._waiting: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task | None = None

    async def put(self, oid: str, data: bytes) -> None:
        """Store an object; returns once it is on disk, raises what refused it."""
        stored = asyncio.get_running_loop().create_future()
        self._waiting.append((oid, data, stored))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_groups())
        await stored

    async def _write_groups(self) -> None:
        group: list[tuple[str, bytes, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                objects = [(oid, data) for oid, data, _ in group]
                try:
                    outcomes = await self.store.put_group(objects)
                except Exception as exc:  # a flush failed: nothing of the group is stored
                    outcomes = [exc] * len(group)
                for (_, _, stored), failure in zip(group, outcomes, strict=True):
                    if stored.done():  # its upload was cancelled
                        continue
                    if failure is None:
                        stored.set_result(None)
                    else:
                        stored.set_exception(failure)
        finally:
            self._writer = None
            for _, _, stored in group + self._waiting:
                if not stored.done():  # the server is stopping
                    stored.cancel()

"""The embedded engine: one SQLite file in the data dir, through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from amphub.clock import Clock
from amphub.db.core import Audit, Connection, Database

# Statements `write` ran on the loop's thread between two checkpoints of the WAL: that
# connection never checkpoints by itself (it would copy the WAL into the file, with fsyncs,
# on the loop's thread), so the database thread does it.
CHECKPOINT_WRITES = 200


class SqliteDatabase(Database):
    """The connections, the single-writer lock and the clock that stamps rows.

    `conn` (aiosqlite, on its own thread) runs transactions and most reads. `here` works on
    the event loop's own thread, for what takes microseconds there and a millisecond of
    thread hand-offs otherwise: it looks rows up by key (`look_up`) and runs single
    statements (`write`). One connection for both, because a connection must read its
    pages again after another one wrote, but not after its own writes: most writes while
    the server is busy are its own. One writer at a time still: `write` and `transaction`
    share the lock.
    """

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, clock: Clock, here: sqlite3.Connection) -> None:
        super().__init__(clock)
        self.conn = conn
        self.here = here
        self._write_lock = asyncio.Lock()
        self._writes = 0  # by `here` since the last checkpoint
        self._checkpoints: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Close both connections, after a checkpoint under way."""
        await asyncio.gather(*self._checkpoints, return_exceptions=True)
        self.here.close()
        await self.conn.close()

    async def write(self, sql: str, params: tuple[object, ...]) -> None:
        """Run on the loop's thread.

        When another process holds the file's write lock, it waits on the database thread
        instead of blocking the loop.
        """
        async with self._write_lock:
            if not self._write_here(sql, params):
                await self.conn.execute(sql, params)
                return
            if self._writes >= CHECKPOINT_WRITES:
                self._writes = 0
                await self._checkpoint_locked()

    def write_at_once(self, sql: str, params: tuple[object, ...]) -> bool:
        """On the loop's thread, or not at all."""
        if self._write_lock.locked() or not self._write_here(sql, params):
            return False
        if self._writes >= CHECKPOINT_WRITES:
            self._writes = 0
            task = asyncio.get_running_loop().create_task(self._checkpoint())
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoints.discard)
        return True

    def _write_here(self, sql: str, params: tuple[object, ...]) -> bool:
        try:
            self.here.execute(sql, params)
        except sqlite3.OperationalError:
            return False  # the file is busy: the caller waits on the database thread
        self._writes += 1
        return True

    async def _checkpoint(self) -> None:
        async with self._write_lock:
            await self._checkpoint_locked()

    async def _checkpoint_locked(self) -> None:
        await self.conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")

    @contextlib.asynccontextmanager
    async def transaction(self, audit: Audit | None = None) -> AsyncIterator[Connection]:
        """One writer at a time (`BEGIN IMMEDIATE`)."""
        async with self._write_lock:
            try:
                # Inside the try: a caller cancelled while BEGIN runs still rolls it back
                # (the statements run in order on the database thread).
                await self.conn.execute("BEGIN IMMEDIATE")
                yield self.conn
                if audit is not None:
                    await self.record(self.conn, audit, self.now())
            except BaseException:
                await self.conn.rollback()
                raise
            await self.conn.commit()

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Reads inside the block (by `fetch_all`) all see the file as it was at its start."""
        async with self._write_lock:
            await self.conn.execute("BEGIN")
            try:
                yield
            finally:
                await self.conn.rollback()

    async def fetch_all(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        """Every row of a query, on the database thread."""
        # One trip to the database thread; a cursor's execute, fetch and close are three.
        return list(await self.conn.execute_fetchall(sql, args))

    async def look_up(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        """Read on the event loop's own thread.

        Every request looks up its user and its model: such a read takes microseconds, while
        a trip to the database thread and back costs about a millisecond when the server is
        busy. It reads what is committed (never another request's open transaction); when
        the file is busy, it waits on the database thread instead of blocking the loop.
        """
        try:
            return self.here.execute(sql, args).fetchall()  # all: the read ends with the call
        except sqlite3.OperationalError:
            return await self.fetch_all(sql, args)

    async def schema_version(self, conn: Connection) -> int:
        """Kept in the file's `user_version`."""
        row = await (await conn.execute("PRAGMA user_version")).fetchone()
        assert row is not None  # the pragma always answers one row
        return int(row[0])

    async def set_schema_version(self, conn: Connection, version: int) -> None:
        """Kept in the file's `user_version`."""
        await conn.execute(f"PRAGMA user_version = {version:d}")

    async def integrity_problems(self) -> list[str]:
        """What SQLite's own check finds wrong in the database file."""
        rows = await self.fetch_all("PRAGMA quick_check", ())
        return [row[0] for row in rows if row[0] != "ok"]


async def connect_sqlite(path: Path, clock: Clock) -> SqliteDatabase:
    """Open the database file, creating it as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    # First: the switch to WAL below waits, too, while another process opens the new file.
    await conn.execute("PRAGMA busy_timeout=10000")
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA synchronous=NORMAL")
    # Searches read cards across the whole file; mapping it saves a copy per page read.
    await conn.execute("PRAGMA mmap_size=1073741824")
    return SqliteDatabase(conn, clock, _open_here(path))


def _open_here(path: Path) -> sqlite3.Connection:
    here = sqlite3.connect(path, isolation_level=None)  # each statement commits on its own
    here.row_factory = sqlite3.Row
    here.execute("PRAGMA foreign_keys=ON")
    here.execute("PRAGMA busy_timeout=0")  # never wait on the loop's thread
    here.execute("PRAGMA synchronous=NORMAL")
    here.execute("PRAGMA wal_autocheckpoint=0")
    here.execute("PRAGMA mmap_size=1073741824")
    return here

"""PostgreSQL, for several nodes sharing one database: psycopg 3 and its connection pool.

Statements are amphub's portable SQL (`amphub.db.dialect`), bound on the client side
(psycopg's ClientCursor) so that a parameter needs no type to be known in advance, as in
SQLite (`? IS NULL OR kind = ?`). Booleans are stored as integers, as in SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from amphub.clock import Clock
from amphub.db.core import Audit, Connection, Database
from amphub.db.dialect import postgresql_sql

# Connections a node opens at most: for statements, and for the advisory locks it holds
# (a held lock keeps its connection; `KeyedLocks` takes at most one per key and node).
POOL_SIZE = 20
LOCK_POOL_SIZE = 40
# How long the readiness check waits for a pooled connection before it opens its own.
POOL_CHECK_SECONDS = 1.0
# Taken by a node that migrates, so that nodes starting together migrate one at a time.
MIGRATION_LOCK = "amphub schema"


class Row(tuple):  # type: ignore[type-arg]
    """A row: its items by place or by column name, like sqlite3.Row."""

    __slots__ = ()
    _names: tuple[str, ...] = ()
    _places: dict[str, int] = {}  # noqa: RUF012  (each subclass has its own)

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._places[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The columns' names."""
        return list(self._names)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    places = {name: place for place, name in reversed(list(enumerate(names)))}
    return type("Row", (Row,), {"__slots__": (), "_names": names, "_places": places})


def _rows(cursor: Any) -> RowMaker[Row]:
    names = tuple(column.name for column in cursor.description or ())
    row_class = _row_class(names)
    return lambda values: row_class(values)


class _BooleanAsInteger(Dumper):
    """True and False as 1 and 0: the columns that hold them are integers on both engines."""

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"

    def quote(self, obj: bool) -> bytes:
        return self.dump(obj)


class _NumberLoader(Loader):
    """A sum of integers as an int, as SQLite gives it (PostgreSQL's numeric would be Decimal)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        try:
            return int(text)
        except ValueError:
            return float(text)


class _Cursor:
    """A statement's result, as a transaction's statements give it on SQLite."""

    def __init__(self, cursor: psycopg.AsyncCursor[Row]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> Row | None:
        return await self._cursor.fetchone() if self._cursor.description else None

    async def fetchall(self) -> list[Row]:
        return await self._cursor.fetchall() if self._cursor.description else []

    async def close(self) -> None:
        await self._cursor.close()


class _Connection:
    """A connection inside a transaction, taking amphub's SQL."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> _Cursor:
        cursor = self._conn.cursor()
        await cursor.execute(postgresql_sql(sql), tuple(parameters))
        return _Cursor(cursor)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(postgresql_sql(sql), [tuple(p) for p in parameters])


class PostgresqlDatabase(Database):
    """A pool of connections to one PostgreSQL database."""

    dialect = "postgresql"

    def __init__(
        self, url: str, pool: AsyncConnectionPool, lock_pool: AsyncConnectionPool, clock: Clock
    ) -> None:
        super().__init__(clock)
        self.url = url
        self.pool = pool
        self.lock_pool = lock_pool
        self._checks: dict[AsyncConnectionPool, asyncio.Future[None]] = {}

    async def close(self) -> None:
        """Close the pools' connections."""
        await asyncio.gather(*self._checks.values(), return_exceptions=True)
        await self.lock_pool.close()
        await self.pool.close()

    async def write(self, sql: str, params: tuple[object, ...]) -> None:
        """Run on a connection of the pool, committing at once."""
        async with _connection(self.pool) as conn:
            try:
                await conn.execute(postgresql_sql(sql), params)
            except psycopg.OperationalError:
                await self._ended(self.pool, conn)
                raise

    @contextlib.asynccontextmanager
    async def transaction(self, audit: Audit | None = None) -> AsyncIterator[Connection]:
        """On one connection of the pool, read committed as PostgreSQL's default."""
        async with _connection(self.pool) as conn:
            try:
                async with conn.transaction():
                    wrapped = _Connection(conn)
                    yield wrapped
                    if audit is not None:
                        await self.record(wrapped, audit, self.now())
            except psycopg.OperationalError:
                await self._ended(self.pool, conn)
                raise

    async def fetch_all(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        """Every row of a query, on a connection of the pool.

        Read again on another connection when the server had ended that one.
        """
        for last in (False, True):
            async with _connection(self.pool) as conn:
                try:
                    cursor = await conn.execute(postgresql_sql(sql), args)
                    return await cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError:
                    if last or not await self._ended(self.pool, conn):
                        raise
        raise AssertionError("the second try returns or raises")

    @contextlib.asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """A session advisory lock, on a connection held for the block.

        From a pool of its own: a block holding a lock may need the statement pool's
        connections, which must not all be holding locks. Taken again on another
        connection when the server had ended that one (its session, and so no lock, ended).
        """
        for last in (False, True):
            async with _connection(self.lock_pool) as conn:
                try:
                    await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
                except psycopg.OperationalError:
                    if last or not await self._ended(self.lock_pool, conn):
                        raise
                    continue
                try:
                    yield
                finally:
                    try:
                        await conn.execute(
                            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,)
                        )
                    except BaseException:
                        # A connection still holding the lock must not go back to the pool.
                        await conn.close()
                        raise
                return

    async def _ended(self, pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Whether the server ended the connection (a restart, a failover, an admin).

        If so, the pool has dropped its other such idle ones when this returns: else each
        would fail a request of its own before the pool noticed.
        """
        if not conn.broken or pool.closed:  # closed: the node is stopping, not the server
            return False
        check = self._checks.get(pool)
        if check is None or check.done():
            check = self._checks[pool] = asyncio.ensure_future(pool.check())
        await asyncio.shield(check)
        return True

    async def reachable(self) -> None:
        """Through the pool; when that fails, on a new connection of its own.

        The pool alone would only make the query wait while the database refuses
        connections, and fail once on a connection the server ended though it is back. A
        new connection says why, but costs about four times a pooled query (its sign-in).
        """
        try:
            async with self.pool.connection(timeout=POOL_CHECK_SECONDS) as conn:
                await conn.execute("SELECT 1 FROM tasks LIMIT 1")
                return
        except (psycopg.Error, PoolTimeout):
            pass
        async with await psycopg.AsyncConnection.connect(self.url) as conn:
            await conn.execute("SELECT 1 FROM tasks LIMIT 1")

    def pool_use(self) -> dict[str, dict[str, int]]:
        """The statements' pool and the advisory locks' pool, from psycopg_pool's counts."""
        return {"statements": _use(self.pool), "locks": _use(self.lock_pool)}

    async def schema_version(self, conn: Connection) -> int:
        """Read under a lock held until the migrating transaction ends."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (MIGRATION_LOCK,)
        )
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        return int(row[0]) if row else 0

    async def set_schema_version(self, conn: Connection, version: int) -> None:
        """Kept in the table `schema_version`."""
        await conn.execute("DELETE FROM schema_version")
        await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def _use(pool: AsyncConnectionPool) -> dict[str, int]:
    stats = pool.get_stats()
    idle = stats.get("pool_available", 0)
    return {
        "in_use": stats.get("pool_size", 0) - idle,
        "idle": idle,
        "waiting": stats.get("requests_waiting", 0),
    }


@contextlib.asynccontextmanager
async def _connection(
    pool: AsyncConnectionPool[Any],
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of the pool, or the cancel that came while the caller waited for one.

    psycopg_pool waits for a connection with Python 3.11's `asyncio.wait_for`, which drops a
    cancel that meets the connection's arrival: the task would go on as if never cancelled
    (a sweep or a task worker sleeping on through the server's shutdown).
    """
    task = asyncio.current_task()
    cancels = task.cancelling() if task else 0
    async with pool.connection() as conn:
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError
        yield conn


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BooleanAsInteger)
    conn.adapters.register_loader("numeric", _NumberLoader)


async def connect_postgresql(url: str, clock: Clock) -> PostgresqlDatabase:
    """Pools of connections to the database at `url`, checked by opening one."""
    options: dict[str, Any] = {
        "autocommit": True,
        "cursor_factory": psycopg.AsyncClientCursor,
        "row_factory": _rows,
    }
    pool = AsyncConnectionPool(
        url, min_size=1, max_size=POOL_SIZE, open=False, configure=_configure, kwargs=options
    )
    lock_pool = AsyncConnectionPool(
        url, min_size=0, max_size=LOCK_POOL_SIZE, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True, timeout=10)
    await lock_pool.open()
    return PostgresqlDatabase(url, pool, lock_pool, clock)

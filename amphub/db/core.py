"""The interface every database engine gives, the functions that read, and the row types."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import psycopg

from amphub.clock import Clock, rfc3339
from amphub.errors import Conflict as Conflict

# What an insert that breaks a unique or foreign key raises, on either engine.
IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True)
class User:
    """A person or a service with a key."""

    name: str
    key_hash: str
    admin: bool
    creator: bool
    disabled: bool
    created_at: str


@dataclass(frozen=True)
class Space:
    """A model space: storage with a quota and a lifetime."""

    id: str
    name: str
    quota: int
    billing_mode: str
    expires_at: str | None
    creator: str
    created_at: str
    released_at: str | None = None
    purged_at: str | None = None


@dataclass(frozen=True)
class Model:
    """A model: one git repository in a space."""

    space_id: str
    id: str
    name: str
    visibility: str
    owner: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Push:
    """One ref moved by a push."""

    space_id: str
    model_id: str
    user: str
    ref: str
    old: str
    new: str
    at: str


class Row(Protocol):
    """A row read: its items by place or by column name, and the columns' names."""

    def __getitem__(self, key: Any, /) -> Any:
        """An item by place or by column name."""

    def __len__(self) -> int:
        """How many columns."""

    def keys(self) -> list[str]:
        """The columns' names."""


class Connection(Protocol):
    """The connection a transaction runs its statements on."""

    def execute(self, sql: str, parameters: Iterable[Any] = ..., /) -> Awaitable[Any]:
        """Run one statement; awaiting gives its cursor."""

    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /) -> Awaitable[Any]:
        """Run one statement once for each set of parameters."""


class Database(abc.ABC):
    """The metadata store: one engine's connections, and the clock that stamps rows.

    Every statement amphub runs goes through these methods (and the functions below), in
    the SQL both engines accept (`amphub.db.dialect`).
    """

    dialect: str  # "sqlite" or "postgresql", for the few statements that differ

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> str:
        """The current time as stored in rows."""
        return rfc3339(self.clock())

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection."""

    @abc.abstractmethod
    async def write(self, sql: str, params: tuple[object, ...]) -> None:
        """One statement changing a few rows, atomic on its own."""

    def write_at_once(self, sql: str, params: tuple[object, ...]) -> bool:
        """`write`, but only if it needs no wait: False (nothing written) when it would."""
        return False

    @abc.abstractmethod
    def transaction(
        self, audit: Audit | None = None
    ) -> contextlib.AbstractAsyncContextManager[Connection]:
        """Everything inside commits together or not at all.

        With `audit`, the audit entry is written in the same transaction as the change.
        """

    @abc.abstractmethod
    async def fetch_all(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        """Every row of a query."""

    async def look_up(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        """The rows of a query that reads a few rows by indexed keys."""
        return await self.fetch_all(sql, args)

    def exclusive(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Held by one node at a time for the length of a block (one process: always free)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    async def schema_version(self, conn: Connection) -> int:
        """The number of migrations applied, read inside the migrating transaction."""

    @abc.abstractmethod
    async def set_schema_version(self, conn: Connection, version: int) -> None:
        """Record the number of migrations applied."""

    async def integrity_problems(self) -> list[str]:
        """What the engine's own check finds wrong in the database; empty when sound."""
        return []

    async def reachable(self) -> None:
        """Raises unless the database answers a query that reads it now."""
        await self.fetch_all("SELECT 1 FROM tasks LIMIT 1", ())

    def pool_use(self) -> dict[str, dict[str, int]]:
        """Connections of each pool in use, idle and waited for; none for an engine in-process."""
        return {}

    @staticmethod
    async def record(conn: Connection, audit: Audit, at: str) -> None:
        """Write an audit entry inside a transaction."""
        await conn.execute(
            "INSERT INTO audit (at, actor, action, space_id, model_id, target, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                audit.actor,
                audit.action,
                audit.space_id,
                audit.model_id,
                audit.target,
                audit.detail,
            ),
        )


async def fetch_one(db: Database, sql: str, *args: object) -> Any | None:
    """The row of a query that gives at most one, or None."""
    rows = await db.fetch_all(sql, args)
    return rows[0] if rows else None


async def fetch_all(db: Database, sql: str, *args: object) -> list[Any]:
    """Every row of a query."""
    return await db.fetch_all(sql, args)


async def look_up(db: Database, sql: str, *args: object) -> list[Any]:
    """The rows of a query by indexed keys: only for a few rows by key, never a scan.

    On SQLite these are read on the event loop's own thread (see `SqliteDatabase`).
    """
    return await db.look_up(sql, args)


async def look_up_one(db: Database, sql: str, *args: object) -> Any | None:
    """The row of a `look_up` that gives at most one, or None."""
    rows = await db.look_up(sql, args)
    return rows[0] if rows else None


RowClass = TypeVar("RowClass", bound="DataclassInstance")


class _Reader(NamedTuple):
    """Where a row class's fields are in rows of one layout."""

    pick: Callable[[Any], tuple[Any, ...]]  # a row's items at the fields' columns
    names: tuple[str, ...]  # the columns' names, in field order
    last: int  # the last column's place
    bools: tuple[int, ...]  # the fields declared bool, by their place


# By row class and prefix, for the layout last seen. A class's queries mostly share one
# layout; one that puts its columns elsewhere gets a new reader.
_readers: dict[tuple[type, str], _Reader] = {}


def row_to(cls: type[RowClass], row: Row, prefix: str = "") -> RowClass:
    """The row dataclass `cls` with each field read from the row's column of that name.

    With `prefix`, field `f` is read from column `prefix + f`: for a join of tables that
    share column names. Columns no field names are left out. A field declared `bool` gets
    `bool(column)`: both engines keep booleans as integers.
    """
    # Checking the names of the columns read is cheaper than hashing all of a row's names.
    columns = row.keys()
    reader = _readers.get((cls, prefix))
    if reader is None or len(columns) <= reader.last or reader.pick(columns) != reader.names:
        reader = _readers[cls, prefix] = _reader(cls, prefix, columns)
    # In field order, the order of the class's parameters: keywords cost about a
    # microsecond a row more, on look-ups that take ten.
    values = reader.pick(row)
    if not reader.bools:
        return cls(*values)
    converted = list(values)
    for i in reader.bools:
        converted[i] = bool(converted[i])
    return cls(*converted)


def _reader(cls: type[DataclassInstance], prefix: str, columns: list[str]) -> _Reader:
    fields = dataclasses.fields(cls)
    names = tuple(prefix + field.name for field in fields)
    missing = [name for name in names if name not in columns]
    if missing:
        raise LookupError(f"no column {', '.join(missing)} for {cls.__name__} in the row")
    positions = [columns.index(name) for name in names]
    # itemgetter of one position gives the item alone, not in a tuple.
    pick = itemgetter(*positions) if len(positions) > 1 else lambda row: (row[positions[0]],)
    bools = tuple(i for i, field in enumerate(fields) if field.type in (bool, "bool"))
    return _Reader(pick, names, max(positions), bools)


@dataclass(frozen=True)
class Audit:
    """What a change records in the audit log, in the change's own transaction."""

    actor: str
    action: str
    space_id: str | None = None
    model_id: str | None = None
    target: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Task:
    """A unit of background work on a model."""

    id: int
    kind: str
    space_id: str
    model_id: str
    ref: str | None
    commit_id: str | None
    params: str
    status: str
    progress: int
    message: str
    result: str | None
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    cancel_requested: bool
    node: str | None
    lease_until: str | None


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, when."""

    seq: int
    at: str
    actor: str
    action: str
    space_id: str | None
    model_id: str | None
    target: str | None
    detail: str


@dataclass(frozen=True)
class LfsLock:
    """A file locked in a model by one user."""

    id: int
    space_id: str
    model_id: str
    path: str
    ref: str | None
    owner: str
    locked_at: str


@dataclass(frozen=True)
class Zone:
    """A peer amphub that models are synced to, and the user to write there as."""

    name: str
    url: str
    user: str
    sealed_key: bytes
    created_at: str


@dataclass(frozen=True)
class DeployTarget:
    """An inference service that deployments are handed to."""

    name: str
    url: str
    sealed_secret: bytes
    created_at: str


@dataclass(frozen=True)
class Replica:
    """A ref of a model as last synced to a zone."""

    zone: str
    ref: str
    commit_id: str
    synced_at: str


@dataclass(frozen=True)
class Deployment:
    """A model version handed to an inference service, with the state it reports."""

    id: int
    space_id: str
    model_id: str
    target: str
    service: str
    instance: str | None
    status: str
    replicas: int
    ready_replicas: int
    ref: str
    commit_id: str
    message: str
    created_by: str
    created_at: str
    updated_at: str
    deleted_at: str | None

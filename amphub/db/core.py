"""The connection, the single-writer lock, migrations and the row types."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import aiosqlite

from amphub.clock import Clock, rfc3339, system_clock
from amphub.errors import Conflict as Conflict

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# Append-only: a shipped migration is never edited, new ones go at the end.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            admin INTEGER NOT NULL DEFAULT 0,
            creator INTEGER NOT NULL DEFAULT 0,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE spaces (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            quota INTEGER NOT NULL,
            billing_mode TEXT NOT NULL,
            expires_at TEXT,
            creator TEXT NOT NULL REFERENCES users(name),
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE models (
            space_id TEXT NOT NULL REFERENCES spaces(id),
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            visibility TEXT NOT NULL DEFAULT 'private',
            owner TEXT NOT NULL REFERENCES users(name),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (space_id, id)
        )
        """,
        """
        CREATE TABLE pushes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            user TEXT NOT NULL,
            ref TEXT NOT NULL,
            old TEXT NOT NULL,
            new TEXT NOT NULL,
            at TEXT NOT NULL,
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
    ),
    (
        """
        CREATE TABLE lfs_objects (
            oid TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE model_objects (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            oid TEXT NOT NULL REFERENCES lfs_objects(oid),
            linked_at TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, oid),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX model_objects_oid ON model_objects(oid)",
        # One statement stores an object's row and its link, so an upload's last step is
        # one round trip to the database.
        """
        CREATE VIEW object_links (space_id, model_id, oid, size, at) AS
            SELECT m.space_id, m.model_id, m.oid, o.size, m.linked_at
            FROM model_objects m JOIN lfs_objects o ON o.oid = m.oid
        """,
        """
        CREATE TRIGGER object_links_insert INSTEAD OF INSERT ON object_links BEGIN
            INSERT OR IGNORE INTO lfs_objects (oid, size, created_at)
            VALUES (new.oid, new.size, new.at);
            INSERT OR IGNORE INTO model_objects (space_id, model_id, oid, linked_at)
            VALUES (new.space_id, new.model_id, new.oid, new.at);
        END
        """,
        """
        CREATE TABLE lfs_locks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            path TEXT NOT NULL,
            ref TEXT,
            owner TEXT NOT NULL,
            locked_at TEXT NOT NULL,
            UNIQUE (space_id, model_id, path),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
    ),
    (
        """
        CREATE TABLE space_members (
            space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
            user TEXT NOT NULL REFERENCES users(name),
            role TEXT NOT NULL,
            PRIMARY KEY (space_id, user)
        )
        """,
        "CREATE INDEX space_members_user ON space_members(user)",
        """
        CREATE TABLE model_members (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            user TEXT NOT NULL REFERENCES users(name),
            role TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, user),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX model_members_user ON model_members(user)",
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            space_id TEXT,
            model_id TEXT,
            target TEXT,
            detail TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX audit_space ON audit(space_id, seq)",
        "ALTER TABLE spaces ADD COLUMN released_at TEXT",
        "ALTER TABLE spaces ADD COLUMN purged_at TEXT",
    ),
    (
        """
        CREATE TABLE cards (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            commit_id TEXT,
            card TEXT NOT NULL,
            task_type TEXT,
            algorithm TEXT,
            license TEXT,
            parameters INTEGER,
            search_text TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        # Covering: a task filter is answered from the index, not the wide card rows.
        "CREATE INDEX cards_task ON cards(task_type COLLATE NOCASE, algorithm COLLATE NOCASE,"
        " space_id, model_id, parameters)",
        "CREATE INDEX cards_algorithm ON cards(algorithm COLLATE NOCASE)",
        """
        CREATE TABLE card_values (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, field, value),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX card_values_lookup ON card_values(field, value COLLATE NOCASE,"
        " space_id, model_id)",
        "CREATE INDEX cards_license ON cards(license COLLATE NOCASE)",
        "CREATE INDEX models_updated ON models(updated_at)",
        "CREATE INDEX models_created ON models(created_at)",
        """
        CREATE VIRTUAL TABLE cards_fts USING fts5(
            search_text, content='cards', content_rowid='rowid', tokenize='trigram'
        )
        """,
        """
        CREATE TRIGGER cards_fts_insert AFTER INSERT ON cards BEGIN
            INSERT INTO cards_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
        END
        """,
        """
        CREATE TRIGGER cards_fts_delete AFTER DELETE ON cards BEGIN
            INSERT INTO cards_fts(cards_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
        END
        """,
        """
        CREATE TRIGGER cards_fts_update AFTER UPDATE ON cards BEGIN
            INSERT INTO cards_fts(cards_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
            INSERT INTO cards_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
        END
        """,
    ),
    (
        """
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            ref TEXT,
            commit_id TEXT,
            params TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued',
            progress INTEGER NOT NULL DEFAULT 0,
            message TEXT NOT NULL DEFAULT '',
            result TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX tasks_status ON tasks(status, id)",
        "CREATE INDEX tasks_model ON tasks(space_id, model_id, id)",
        """
        CREATE TABLE scan_results (
            content_id TEXT NOT NULL,
            scanner_version TEXT NOT NULL,
            verdict TEXT NOT NULL,
            PRIMARY KEY (content_id, scanner_version)
        )
        """,
    ),
    (
        # Peer credentials and target secrets are sealed with the server secret.
        """
        CREATE TABLE zones (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            user TEXT NOT NULL,
            sealed_key BLOB NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE deploy_targets (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            sealed_secret BLOB NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE replicas (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            zone TEXT NOT NULL,
            ref TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            synced_at TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, zone, ref)
        )
        """,
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            target TEXT NOT NULL,
            service TEXT NOT NULL,
            instance TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            replicas INTEGER NOT NULL,
            ready_replicas INTEGER NOT NULL DEFAULT 0,
            ref TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        )
        """,
        "CREATE INDEX deployments_model ON deployments(space_id, model_id, id)",
        # Signatures of accepted callbacks, so that a replayed one is refused.
        """
        CREATE TABLE callback_signatures (
            signature TEXT PRIMARY KEY,
            seen_at REAL NOT NULL
        )
        """,
    ),
    (
        # Search answers from an index in memory (amphub/search_index.py). These triggers
        # log each model whose row, card, card values or members change, whichever
        # connection or process writes, so the index replays exactly those models first.
        # The clock only goes up; a model's row holds the number of its latest change.
        "CREATE TABLE search_clock (seq INTEGER NOT NULL)",
        "INSERT INTO search_clock (seq) VALUES (0)",
        """
        CREATE TABLE search_changes (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (space_id, model_id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX search_changes_seq ON search_changes(seq)",
        "CREATE VIEW search_log (space_id, model_id) AS"
        " SELECT space_id, model_id FROM search_changes",
        # Delete, then insert: a conflict clause in a trigger gives way to the outer
        # statement's, and an outer INSERT OR IGNORE would then drop the entry.
        """
        CREATE TRIGGER search_log_insert INSTEAD OF INSERT ON search_log BEGIN
            UPDATE search_clock SET seq = seq + 1;
            DELETE FROM search_changes WHERE space_id = new.space_id AND model_id = new.model_id;
            INSERT INTO search_changes (space_id, model_id, seq)
            SELECT new.space_id, new.model_id, seq FROM search_clock;
        END
        """,
        """
        CREATE TRIGGER models_search_insert AFTER INSERT ON models BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.id);
        END
        """,
        """
        CREATE TRIGGER models_search_update AFTER UPDATE ON models BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.id);
            INSERT INTO search_log VALUES (new.space_id, new.id);
        END
        """,
        """
        CREATE TRIGGER models_search_delete AFTER DELETE ON models BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.id);
        END
        """,
        """
        CREATE TRIGGER cards_search_insert AFTER INSERT ON cards BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
        """
        CREATE TRIGGER cards_search_update AFTER UPDATE ON cards BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
        """
        CREATE TRIGGER cards_search_delete AFTER DELETE ON cards BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
        END
        """,
        """
        CREATE TRIGGER card_values_search_insert AFTER INSERT ON card_values BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
        """
        CREATE TRIGGER card_values_search_update AFTER UPDATE ON card_values BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
        """
        CREATE TRIGGER card_values_search_delete AFTER DELETE ON card_values BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
        END
        """,
        """
        CREATE TRIGGER model_members_search_insert AFTER INSERT ON model_members BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
        """
        CREATE TRIGGER model_members_search_update AFTER UPDATE ON model_members BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
        """
        CREATE TRIGGER model_members_search_delete AFTER DELETE ON model_members BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
        END
        """,
    ),
    (
        # Where each chunk of a model's Xet uploads ended up: a byte range of an LFS object
        # linked to the model. A later upload may name chunks of a xorb sent long before.
        """
        CREATE TABLE xet_chunks (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            xorb TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            oid TEXT NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            PRIMARY KEY (space_id, model_id, xorb, chunk),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID
        """,
    ),
    # The node (the `node` setting) that last started each task.
    ("ALTER TABLE tasks ADD COLUMN node TEXT",),
    (
        # Upstream hubs that models are mirrored from, and which model mirrors which repo.
        # A mirror's row outlives its upstream's: the model stays when the upstream goes.
        """
        CREATE TABLE upstreams (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            space_id TEXT NOT NULL,
            sealed_token BLOB,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE mirrors (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            upstream TEXT NOT NULL,
            repo TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
    ),
    (
        # What every node of a hub must see alike. Bytes promised to uploads in flight: a
        # batch call's for a few minutes, an upload's for as long as its node renews it.
        """
        CREATE TABLE reservations (
            space_id TEXT NOT NULL,
            oid TEXT NOT NULL,
            size INTEGER NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (space_id, oid)
        )
        """,
        # Objects an upload is storing and linking, one row a claim of a node (`holder`):
        # collection skips them.
        """
        CREATE TABLE object_claims (
            oid TEXT NOT NULL,
            id TEXT NOT NULL,
            holder TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (oid, id)
        )
        """,
        # Failed sign-ins by client address, in a window that opens at the first of them.
        """
        CREATE TABLE failed_sign_ins (
            address TEXT PRIMARY KEY,
            since TEXT NOT NULL,
            failures INTEGER NOT NULL
        )
        """,
        "CREATE INDEX failed_sign_ins_since ON failed_sign_ins(since)",
        # The key that signs tokens and sessions and seals credentials, as hex.
        """
        CREATE TABLE signing_secrets (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    ),
]


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


# Statements `write` ran on the loop's thread between two checkpoints of the WAL: that
# connection never checkpoints by itself (it would copy the WAL into the file, with fsyncs,
# on the loop's thread), so the database thread does it.
CHECKPOINT_WRITES = 200


class Database:
    """The connections, the single-writer lock and the clock that stamps rows.

    `conn` (aiosqlite, on its own thread) runs transactions and most reads. `here` works on
    the event loop's own thread, for what takes microseconds there and a millisecond of
    thread hand-offs otherwise: it looks rows up by key (`look_up`) and runs single
    statements (`write`). One connection for both, because a connection must read its
    pages again after another one wrote, but not after its own writes: most writes while
    the server is busy are its own. One writer at a time still: `write` and `transaction`
    share the lock.
    """

    dialect = "sqlite"  # the engine, for the few statements that differ between engines

    def __init__(
        self,
        conn: aiosqlite.Connection,
        clock: Clock,
        here: sqlite3.Connection,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.here = here
        self._write_lock = asyncio.Lock()
        self._writes = 0  # by `here` since the last checkpoint
        self._checkpoints: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Close every connection."""
        await asyncio.gather(*self._checkpoints, return_exceptions=True)
        self.here.close()
        await self.conn.close()

    def now(self) -> str:
        """The current time as stored in rows."""
        return rfc3339(self.clock())

    async def write(self, sql: str, params: tuple[object, ...]) -> None:
        """One statement changing a few rows, atomic on its own, run on the loop's thread.

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
        """`write`, but only if it needs no wait: False (nothing written) when it would."""
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
    async def transaction(self, audit: Audit | None = None) -> AsyncIterator[aiosqlite.Connection]:
        """One writer at a time; everything inside commits together or not at all.

        With `audit`, the audit entry is written in the same transaction as the change.
        """
        async with self._write_lock:
            try:
                # Inside the try: a caller cancelled while BEGIN runs still rolls it back
                # (the statements run in order on the database thread).
                await self.conn.execute("BEGIN IMMEDIATE")
                yield self.conn
                if audit is not None:
                    await self.conn.execute(
                        "INSERT INTO audit (at, actor, action, space_id, model_id, target, detail)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            self.now(),
                            audit.actor,
                            audit.action,
                            audit.space_id,
                            audit.model_id,
                            audit.target,
                            audit.detail,
                        ),
                    )
            except BaseException:
                await self.conn.rollback()
                raise
            await self.conn.commit()


async def connect(path: Path, clock: Clock = system_clock) -> Database:
    """Open the database file, creating and migrating it as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=10000")
    await conn.execute("PRAGMA synchronous=NORMAL")
    # Searches read cards across the whole file; mapping it saves a copy per page read.
    await conn.execute("PRAGMA mmap_size=1073741824")
    db = Database(conn, clock, _open_here(path))
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


def _open_here(path: Path) -> sqlite3.Connection:
    here = sqlite3.connect(path, isolation_level=None)  # each statement commits on its own
    here.row_factory = sqlite3.Row
    here.execute("PRAGMA foreign_keys=ON")
    here.execute("PRAGMA busy_timeout=0")  # never wait on the loop's thread
    here.execute("PRAGMA synchronous=NORMAL")
    here.execute("PRAGMA wal_autocheckpoint=0")
    here.execute("PRAGMA mmap_size=1073741824")
    return here


class NewerDatabase(Exception):
    """The file was written by a newer amphub than this one."""


async def migrate(db: Database) -> None:
    """Apply the migrations the file has not seen yet, all in one transaction."""
    async with db.transaction() as conn:
        row = await (await conn.execute("PRAGMA user_version")).fetchone()
        assert row is not None  # the pragma always answers one row
        version = row[0]
        if version > len(MIGRATIONS):
            raise NewerDatabase(
                f"the database is at version {version}, newer than this amphub"
                f" ({len(MIGRATIONS)}); upgrade amphub"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {number:d}")


@contextlib.asynccontextmanager
async def opened(path: Path, clock: Clock = system_clock) -> AsyncIterator[Database]:
    """The database for the length of a block."""
    db = await connect(path, clock)
    try:
        yield db
    finally:
        await db.close()


async def integrity_problems(db: Database) -> list[str]:
    """What SQLite's own check finds wrong in the database file; empty when it is sound."""
    rows = await fetch_all(db, "PRAGMA quick_check")
    return [row[0] for row in rows if row[0] != "ok"]


async def fetch_one(db: Database, sql: str, *args: object) -> sqlite3.Row | None:
    """The row of a query that gives at most one, or None."""
    rows = await fetch_all(db, sql, *args)
    return rows[0] if rows else None


async def look_up(db: Database, sql: str, *args: object) -> list[sqlite3.Row]:
    """The rows of a query by indexed keys, read on the event loop's own thread.

    Every request looks up its user and its model: such a read takes microseconds, while a
    trip to the database thread and back costs about a millisecond when the server is
    busy. Only for queries that read a few rows by key, never a scan. It reads what is
    committed (never another request's open transaction); when the file is busy, it waits
    on the database thread instead of blocking the loop.
    """
    try:
        return db.here.execute(sql, args).fetchall()  # all: the read ends with the call
    except sqlite3.OperationalError:
        return await fetch_all(db, sql, *args)


async def look_up_one(db: Database, sql: str, *args: object) -> sqlite3.Row | None:
    """The row of a `look_up` that gives at most one, or None."""
    rows = await look_up(db, sql, *args)
    return rows[0] if rows else None


async def fetch_all(db: Database, sql: str, *args: object) -> list[sqlite3.Row]:
    """Every row of a query."""
    # One trip to the database thread; a cursor's execute, fetch and close are three.
    return list(await db.conn.execute_fetchall(sql, args))


RowClass = TypeVar("RowClass", bound="DataclassInstance")


class _Reader(NamedTuple):
    """Where a row class's fields are in rows of one layout."""

    pick: Callable[[Sequence[Any]], tuple[Any, ...]]  # a row's items at the fields' columns
    names: tuple[str, ...]  # the columns' names, in field order
    last: int  # the last column's place
    bools: tuple[int, ...]  # the fields declared bool, by their place


# By row class and prefix, for the layout last seen. A class's queries mostly share one
# layout; one that puts its columns elsewhere gets a new reader.
_readers: dict[tuple[type, str], _Reader] = {}


def row_to(cls: type[RowClass], row: sqlite3.Row, prefix: str = "") -> RowClass:
    """The row dataclass `cls` with each field read from the row's column of that name.

    With `prefix`, field `f` is read from column `prefix + f`: for a join of tables that
    share column names. Columns no field names are left out. A field declared `bool` gets
    `bool(column)`: SQLite keeps booleans as integers.
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

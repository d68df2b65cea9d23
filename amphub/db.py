"""The database: one aiosqlite connection, migrations, and every SQL statement."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from amphub.clock import Clock, rfc3339, system_clock

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
]


class Conflict(Exception):
    """A row with the same key exists already."""


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


class Database:
    """The connection, the single-writer lock and the clock that stamps rows."""

    def __init__(self, conn: aiosqlite.Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock
        self._write_lock = asyncio.Lock()

    def now(self) -> str:
        """The current time as stored in rows."""
        return rfc3339(self.clock())

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One writer at a time; everything inside commits together or not at all."""
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
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
    db = Database(conn, clock)
    await migrate(db)
    return db


async def migrate(db: Database) -> None:
    """Apply the migrations the file has not seen yet, each in its own transaction."""
    async with db.transaction() as conn:
        (version,) = await (await conn.execute("PRAGMA user_version")).fetchone()
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
        await db.conn.close()


async def _one(db: Database, sql: str, *args: object) -> sqlite3.Row | None:
    async with db.conn.execute(sql, args) as cursor:
        return await cursor.fetchone()


async def _all(db: Database, sql: str, *args: object) -> list[sqlite3.Row]:
    async with db.conn.execute(sql, args) as cursor:
        return list(await cursor.fetchall())


def _user(row: sqlite3.Row) -> User:
    return User(
        row["name"],
        row["key_hash"],
        bool(row["admin"]),
        bool(row["creator"]),
        bool(row["disabled"]),
        row["created_at"],
    )


# Users


async def count_users(db: Database) -> int:
    """How many users exist."""
    row = await _one(db, "SELECT count(*) FROM users")
    return row[0]


async def insert_user(
    db: Database, name: str, key_hash: str, *, admin: bool = False, creator: bool = False
) -> User:
    """Create a user; `Conflict` if the name is taken."""
    now = db.now()
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO users (name, key_hash, admin, creator, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, key_hash, admin, creator, now),
            )
    except sqlite3.IntegrityError:
        raise Conflict(f"user {name} exists already") from None
    return User(name, key_hash, admin, creator, False, now)


async def get_user(db: Database, name: str) -> User | None:
    """The user with this name."""
    row = await _one(db, "SELECT * FROM users WHERE name = ?", name)
    return _user(row) if row else None


async def get_user_by_key_hash(db: Database, key_hash: str) -> User | None:
    """The user whose key hashes to `key_hash`."""
    row = await _one(db, "SELECT * FROM users WHERE key_hash = ?", key_hash)
    return _user(row) if row else None


async def list_users(db: Database) -> list[User]:
    """Every user, by name."""
    return [_user(row) for row in await _all(db, "SELECT * FROM users ORDER BY name")]


async def set_user_key_hash(db: Database, name: str, key_hash: str) -> bool:
    """Replace a user's key; False if there is no such user."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE users SET key_hash = ? WHERE name = ?", (key_hash, name)
        )
    return cursor.rowcount == 1


async def update_user_flags(
    db: Database,
    name: str,
    *,
    admin: bool | None = None,
    creator: bool | None = None,
    disabled: bool | None = None,
) -> User | None:
    """Change the given flags of a user and return it; None if there is no such user."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET admin = coalesce(?, admin), creator = coalesce(?, creator),"
            " disabled = coalesce(?, disabled) WHERE name = ?",
            (admin, creator, disabled, name),
        )
    return await get_user(db, name)


# Spaces


def _space(row: sqlite3.Row) -> Space:
    return Space(
        row["id"],
        row["name"],
        row["quota"],
        row["billing_mode"],
        row["expires_at"],
        row["creator"],
        row["created_at"],
    )


async def insert_space(
    db: Database,
    space_id: str,
    name: str,
    quota: int,
    billing_mode: str,
    expires_at: str | None,
    creator: str,
) -> Space:
    """Create a space; `Conflict` if the id is taken."""
    now = db.now()
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO spaces (id, name, quota, billing_mode, expires_at, creator,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (space_id, name, quota, billing_mode, expires_at, creator, now),
            )
    except sqlite3.IntegrityError:
        raise Conflict(f"space {space_id} exists already") from None
    return Space(space_id, name, quota, billing_mode, expires_at, creator, now)


async def get_space(db: Database, space_id: str) -> Space | None:
    """The space with this id."""
    row = await _one(db, "SELECT * FROM spaces WHERE id = ?", space_id)
    return _space(row) if row else None


async def list_spaces(db: Database) -> list[Space]:
    """Every space, by id."""
    return [_space(row) for row in await _all(db, "SELECT * FROM spaces ORDER BY id")]


async def space_model_counts(db: Database, space_id: str) -> list[tuple[str, int]]:
    """(owner, number of models) for each owner of models in the space."""
    rows = await _all(
        db, "SELECT owner, count(*) FROM models WHERE space_id = ? GROUP BY owner", space_id
    )
    return [(row[0], row[1]) for row in rows]


# Models


def _model(row: sqlite3.Row) -> Model:
    return Model(
        row["space_id"],
        row["id"],
        row["name"],
        row["visibility"],
        row["owner"],
        row["created_at"],
        row["updated_at"],
    )


async def insert_model(
    db: Database, space_id: str, model_id: str, name: str, visibility: str, owner: str
) -> Model:
    """Create a model row; `Conflict` if the id is taken in the space (case-insensitively)."""
    now = db.now()
    async with db.transaction() as conn:
        taken = await (
            await conn.execute(
                "SELECT 1 FROM models WHERE space_id = ? AND lower(id) = lower(?)",
                (space_id, model_id),
            )
        ).fetchone()
        if taken:
            raise Conflict(f"model {space_id}/{model_id} exists already")
        await conn.execute(
            "INSERT INTO models (space_id, id, name, visibility, owner, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (space_id, model_id, name, visibility, owner, now, now),
        )
    return Model(space_id, model_id, name, visibility, owner, now, now)


async def delete_model_row(db: Database, space_id: str, model_id: str) -> None:
    """Forget a model (its repository is the caller's to remove)."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM models WHERE space_id = ? AND id = ?", (space_id, model_id))


async def get_model(db: Database, space_id: str, model_id: str) -> Model | None:
    """The model with this id in the space."""
    row = await _one(db, "SELECT * FROM models WHERE space_id = ? AND id = ?", space_id, model_id)
    return _model(row) if row else None


async def list_space_models(db: Database, space_id: str) -> list[Model]:
    """The models of one space, by id."""
    rows = await _all(db, "SELECT * FROM models WHERE space_id = ? ORDER BY id", space_id)
    return [_model(row) for row in rows]


async def list_models(db: Database) -> list[Model]:
    """Every model, most recently updated first."""
    rows = await _all(db, "SELECT * FROM models ORDER BY updated_at DESC, space_id, id")
    return [_model(row) for row in rows]


# Pushes


async def record_pushes(db: Database, pushes: list[Push]) -> None:
    """Store the refs a push moved and mark the model as updated."""
    if not pushes:
        return
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO pushes (space_id, model_id, user, ref, old, new, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(p.space_id, p.model_id, p.user, p.ref, p.old, p.new, p.at) for p in pushes],
        )
        first = pushes[0]
        await conn.execute(
            "UPDATE models SET updated_at = ? WHERE space_id = ? AND id = ?",
            (first.at, first.space_id, first.model_id),
        )


async def list_pushes(db: Database, space_id: str, model_id: str) -> list[Push]:
    """The refs moved in a model, oldest first."""
    rows = await _all(
        db,
        "SELECT * FROM pushes WHERE space_id = ? AND model_id = ? ORDER BY seq",
        space_id,
        model_id,
    )
    return [
        Push(r["space_id"], r["model_id"], r["user"], r["ref"], r["old"], r["new"], r["at"])
        for r in rows
    ]

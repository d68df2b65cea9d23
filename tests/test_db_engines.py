"""Migrations on both engines: applied once and recorded, all or nothing, one at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest

from amphub import db
from tests.conftest import read_from_outside, write_from_outside
from tests.test_db import patch_migrations

ADA = (
    "INSERT INTO users (name, key_hash, creator, created_at)"
    " VALUES ('ada', 'hash', 1, '2026-01-01T00:00:00Z')",
    (),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A database not made yet: a SQLite file's path, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "amphub.db"
    return str(request.getfixturevalue("empty_database"))


async def version(target: Path | str) -> int:
    if isinstance(target, Path):
        return (await read_from_outside(target, "PRAGMA user_version"))[0][0]
    return (await read_from_outside(target, "SELECT version FROM schema_version"))[0][0]


async def columns(target: Path | str, table: str) -> list[str]:
    if isinstance(target, Path):
        return [row[1] for row in await read_from_outside(target, f"PRAGMA table_info({table})")]
    rows = await read_from_outside(
        target,
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " ORDER BY ordinal_position",
        table,
    )
    return [row[0] for row in rows]


async def test_migrations_are_applied_once_and_recorded(target: Path | str):
    async with db.opened(target):
        pass
    assert await version(target) == len(db.MIGRATIONS)
    if isinstance(target, str):
        assert await read_from_outside(target, "SELECT count(*) FROM schema_version") == [(1,)]
    await write_from_outside(target, ADA)
    before = await columns(target, "users")
    async with db.opened(target) as database:  # a current database: nothing to do
        assert (await db.get_user(database, "ada")) is not None
    assert await version(target) == len(db.MIGRATIONS)
    assert await columns(target, "users") == before


async def test_a_newer_database_is_refused_with_its_sentence(target: Path | str):
    async with db.opened(target):
        pass
    newer = len(db.MIGRATIONS) + 1
    if isinstance(target, Path):
        await write_from_outside(target, (f"PRAGMA user_version = {newer}", ()))
    else:
        await write_from_outside(target, ("UPDATE schema_version SET version = ?", (newer,)))
    with pytest.raises(db.NewerDatabase) as refused:
        await db.connect(target)
    assert str(refused.value) == (
        f"the database is at version {newer}, newer than this amphub ({len(db.MIGRATIONS)});"
        " upgrade amphub"
    )


async def test_a_failing_migration_leaves_nothing_behind(
    target: Path | str, monkeypatch: pytest.MonkeyPatch
):
    async with db.opened(target):
        pass
    await write_from_outside(target, ADA)
    before = await columns(target, "users")
    patch_migrations(
        monkeypatch,
        [
            *db.MIGRATIONS,
            ("CREATE TABLE extra (id INTEGER PRIMARY KEY)",),
            (
                "ALTER TABLE users ADD COLUMN y TEXT",
                "UPDATE users SET y = 'changed'",
                "DELETE FROM users",
                "THIS IS NOT SQL",
            ),
        ],
    )
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.SyntaxError)):
        await db.connect(target)
    assert await version(target) == len(db.MIGRATIONS) - 2
    assert await columns(target, "users") == before
    assert await columns(target, "extra") == []
    assert await read_from_outside(target, "SELECT name FROM users") == [("ada",)]


async def test_nodes_migrating_at_once_end_at_one_schema_version(target: Path | str):
    opened = await asyncio.gather(db.connect(target), db.connect(target))
    for database in opened:
        await database.close()
    assert await version(target) == len(db.MIGRATIONS)
    if isinstance(target, str):
        assert await read_from_outside(target, "SELECT count(*) FROM schema_version") == [(1,)]

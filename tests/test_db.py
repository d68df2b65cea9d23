"""Migrations: applied in order against PRAGMA user_version, each all or nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from amphub import db
from amphub.db import core, sqlite_database


def patch_migrations(monkeypatch: pytest.MonkeyPatch, migrations: list) -> None:
    """Replace the migration list where `migrate` reads it (and its re-export)."""
    monkeypatch.setattr(sys.modules[db.migrate.__module__], "MIGRATIONS", migrations)
    monkeypatch.setattr(db, "MIGRATIONS", migrations)


def version_and_columns(path: Path) -> tuple[int, list[str]]:
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        columns = [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    conn.close()
    return version, columns


async def make_database(path: Path) -> None:
    """A current database with a few rows (the first migration's tables never change)."""
    async with db.opened(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO users (name, key_hash, creator, created_at)"
            " VALUES ('ada', 'hash', 1, '2026-01-01T00:00:00Z')"
        )
        conn.execute(
            "INSERT INTO spaces (id, name, quota, billing_mode, creator, created_at)"
            " VALUES ('team', 'Team', 1024, 'monthly', 'ada', '2026-01-01T00:00:00Z')"
        )
        conn.execute(
            "INSERT INTO models (space_id, id, name, owner, created_at, updated_at)"
            " VALUES ('team', 'm1', 'M1', 'ada', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        )
    conn.close()


async def test_fresh_file_ends_at_last_migration(tmp_path):
    path = tmp_path / "sub" / "amphub.db"
    async with db.opened(path) as database:
        async with database.conn.execute("PRAGMA user_version") as cursor:
            (version,) = await cursor.fetchone()
        async with database.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ) as cursor:
            tables = {row[0] for row in await cursor.fetchall()}
    assert version == len(db.MIGRATIONS) >= 1
    assert {"users", "spaces", "models", "pushes"} <= tables
    # Reopening a current file changes nothing.
    async with db.opened(path):
        pass
    assert version_and_columns(path)[0] == len(db.MIGRATIONS)


async def test_older_file_is_migrated_not_recreated(tmp_path, monkeypatch):
    path = tmp_path / "amphub.db"
    await make_database(path)
    old_version, old_columns = version_and_columns(path)
    assert old_version == len(db.MIGRATIONS)

    patch_migrations(
        monkeypatch,
        [
            *db.MIGRATIONS,
            ("ALTER TABLE users ADD COLUMN x TEXT NOT NULL DEFAULT 'filled'",),
            ("CREATE TABLE extra (id INTEGER PRIMARY KEY)", "INSERT INTO extra (id) VALUES (7)"),
        ],
    )
    async with db.opened(path) as database:
        user = await db.get_user(database, "ada")
        assert user is not None and user.creator
        assert await db.get_space(database, "team") is not None
        assert [m.id for m in await db.list_space_models(database, "team")] == ["m1"]
        async with database.conn.execute("SELECT x FROM users WHERE name = 'ada'") as cursor:
            assert tuple(await cursor.fetchone()) == ("filled",)
        async with database.conn.execute("SELECT id FROM extra") as cursor:
            assert [tuple(r) for r in await cursor.fetchall()] == [(7,)]

    version, columns = version_and_columns(path)
    assert version == old_version + 2
    assert columns == [*old_columns, "x"]


async def test_failing_migration_is_rolled_back_whole(tmp_path, monkeypatch):
    path = tmp_path / "amphub.db"
    await make_database(path)
    old_version, old_columns = version_and_columns(path)
    patch_migrations(
        monkeypatch,
        [
            *db.MIGRATIONS,
            # The first statements work, the last one does not.
            (
                "ALTER TABLE users ADD COLUMN y TEXT",
                "UPDATE users SET y = 'changed'",
                "DELETE FROM models",
                "THIS IS NOT SQL",
            ),
        ],
    )
    with pytest.raises(sqlite3.OperationalError):
        async with db.opened(path):
            pass
    version, columns = version_and_columns(path)
    assert (version, columns) == (old_version, old_columns)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name, creator FROM users").fetchall() == [("ada", 1)]
        assert conn.execute("SELECT id FROM models").fetchall() == [("m1",)]
    conn.close()

    # Once the broken migration is mended, the file migrates on the next start.
    patch_migrations(
        monkeypatch,
        [
            *db.MIGRATIONS[:-1],
            ("ALTER TABLE users ADD COLUMN y TEXT", "UPDATE users SET y = 'changed'"),
        ],
    )
    async with (
        db.opened(path) as database,
        database.conn.execute("SELECT name, y FROM users") as cursor,
    ):
        assert [tuple(r) for r in await cursor.fetchall()] == [("ada", "changed")]
    assert version_and_columns(path) == (old_version + 1, [*old_columns, "y"])


async def test_failing_migration_closes_its_connection(tmp_path, monkeypatch):
    path = tmp_path / "amphub.db"
    await make_database(path)
    patch_migrations(monkeypatch, [*db.MIGRATIONS, ("THIS IS NOT SQL",)])
    before = threading.active_count()
    with pytest.raises(sqlite3.OperationalError) as info:
        await db.connect(path)
    # The exception (kept alive here) must not keep a connection and its thread open.
    for _ in range(100):
        if threading.active_count() <= before:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= before, info.value


async def test_transaction_rolls_back_on_error(tmp_path):
    async with db.opened(tmp_path / "amphub.db") as database:
        async with database.transaction() as conn:
            await conn.execute(
                "INSERT INTO users (name, key_hash, created_at) VALUES ('ada', 'h', 'now')"
            )
        with pytest.raises(RuntimeError):
            async with database.transaction() as conn:
                await conn.execute("DELETE FROM users")
                raise RuntimeError("boom")
        assert [u.name for u in await db.list_users(database)] == ["ada"]


async def test_a_transaction_cancelled_while_it_begins_leaves_nothing_open(tmp_path):
    # aiohttp cancels a handler whose client went away (the test server always does):
    # a transaction cancelled at its BEGIN must not stay open and swallow later writes.
    path = tmp_path / "amphub.db"
    async with db.opened(path) as database:

        async def change() -> None:
            async with database.transaction() as conn:
                await conn.execute("DELETE FROM users")

        task = asyncio.create_task(change())
        await asyncio.sleep(0)  # the task now waits for its BEGIN
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await database.write(
            "INSERT INTO users (name, key_hash, created_at) VALUES ('ada', 'h', 'now')", ()
        )
        assert not database.conn.in_transaction
        other = sqlite3.connect(path)
        assert other.execute("SELECT name FROM users").fetchall() == [("ada",)]
        other.close()


async def test_a_lookup_on_the_loop_reads_what_is_committed(tmp_path):
    path = tmp_path / "amphub.db"
    async with db.opened(path) as database:
        assert await db.get_user(database, "ada") is None
        async with database.transaction() as conn:
            await conn.execute(
                "INSERT INTO users (name, key_hash, created_at) VALUES ('ada', 'h', 'now')"
            )
            assert await db.get_user(database, "ada") is None  # not committed yet
        assert (await db.get_user(database, "ada")).name == "ada"
        outside = sqlite3.connect(path)  # another process, like `amphub admin`
        with outside:
            outside.execute("UPDATE users SET disabled = 1 WHERE name = 'ada'")
        outside.close()
        assert (await db.get_user(database, "ada")).disabled


async def test_a_write_waits_on_the_database_thread_while_another_process_writes(tmp_path):
    path = tmp_path / "amphub.db"
    async with db.opened(path) as database:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # like `amphub admin` in the middle of a change
        other.execute("INSERT INTO users (name, key_hash, created_at) VALUES ('bo', 'b', 'now')")
        write = asyncio.create_task(
            database.write(
                "INSERT INTO users (name, key_hash, created_at) VALUES ('ada', 'h', 'now')", ()
            )
        )
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting, and the loop is free meanwhile
        other.execute("COMMIT")
        other.close()
        await write
        assert sorted(u.name for u in await db.list_users(database)) == ["ada", "bo"]


async def test_writes_on_the_loop_thread_keep_the_wal_small(tmp_path):
    path = tmp_path / "amphub.db"
    async with db.opened(path) as database:
        for i in range(5 * sqlite_database.CHECKPOINT_WRITES):
            await database.write(
                "INSERT INTO users (name, key_hash, created_at) VALUES (?, ?, 'now')",
                (f"user{i:05}", f"{i:064}"),
            )
        assert await db.count_users(database) == 5 * sqlite_database.CHECKPOINT_WRITES
        # Each write adds about 3.5 pages to the WAL: without the checkpoints that let it
        # start over, it would hold all of them (~3,500).
        pages = (tmp_path / "amphub.db-wal").stat().st_size / 4096
        assert pages < 2 * 4 * sqlite_database.CHECKPOINT_WRITES


async def test_a_write_at_once_never_waits_and_writes_nothing_when_it_would(tmp_path):
    path = tmp_path / "amphub.db"
    insert = "INSERT INTO users (name, key_hash, created_at) VALUES (?, ?, 'now')"
    async with db.opened(path) as database:
        async with database.transaction():
            assert not database.write_at_once(insert, ("in-transaction", "a"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writes
        assert not database.write_at_once(insert, ("other-writes", "b"))
        other.execute("ROLLBACK")
        other.close()
        assert database.write_at_once(insert, ("ada", "c"))
        assert [u.name for u in await db.list_users(database)] == ["ada"]


async def test_rows_are_mapped_by_column_name_not_position(tmp_path):
    async with db.opened(tmp_path / "amphub.db") as database:
        inserted = await db.insert_user(database, "ada", "hash", creator=True)
        # The columns in the reverse of the fields' order, and one that no field names.
        row = database.here.execute(
            "SELECT 'extra' AS note, created_at, disabled, creator, admin, key_hash, name"
            " FROM users"
        ).fetchone()
        user = core.row_to(db.User, row)
        assert user == inserted
        assert (user.name, user.key_hash, user.creator) == ("ada", "hash", True)
        assert all(type(flag) is bool for flag in (user.admin, user.creator, user.disabled))
        with pytest.raises(LookupError, match="key_hash"):
            core.row_to(db.User, database.here.execute("SELECT name FROM users").fetchone())
        # The usual layout again, after two others.
        assert await db.get_user(database, "ada") == inserted


async def test_a_join_maps_each_table_from_its_own_columns(tmp_path):
    # Spaces, models and users share column names (name, created_at, ...).
    async with db.opened(tmp_path / "amphub.db") as database:
        ada = await db.insert_user(database, "ada", "hash", admin=True)
        space = await db.insert_space(database, "team", "Team", 1024, "monthly", None, "ada")
        model = await db.insert_model(database, "team", "m1", "Model one", "private", "ada")
        audit = db.Audit("ada", "grant")
        await db.set_space_member(database, "team", "ada", "editor", audit)
        await db.set_model_member(database, "team", "m1", "ada", "viewer", audit)
        found = (space, model, "editor", "viewer")
        assert await db.model_with_roles(database, "team", "m1", "ada") == found
        assert await db.model_with_roles(database, "team", "m1", None) == (space, model, None, None)
        assert await db.user_with_model(database, "ada", "team", "m1") == (ada, found)
        assert await db.user_with_model(database, "ada", "team", "m2") == (ada, None)
        assert await db.user_with_model(database, "bo", "team", "m1") is None

"""Opening the database named by the `database` setting, and bringing its schema up to date."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from amphub.clock import Clock, system_clock
from amphub.db.core import Database
from amphub.db.postgresql_database import connect_postgresql
from amphub.db.schema import MIGRATIONS, statements
from amphub.db.sqlite_database import connect_sqlite


class NewerDatabase(Exception):
    """The database was written by a newer amphub than this one."""


async def connect(target: Path | str, clock: Clock = system_clock) -> Database:
    """Open the database (a SQLite file's path or a postgresql:// URL), migrating it as needed."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        db: Database = await connect_postgresql(target, clock)
    else:
        db = await connect_sqlite(Path(target), clock)
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


async def migrate(db: Database) -> None:
    """Apply the migrations the database has not seen yet, all in one transaction."""
    async with db.transaction() as conn:
        version = await db.schema_version(conn)
        if version > len(MIGRATIONS):
            raise NewerDatabase(
                f"the database is at version {version}, newer than this amphub"
                f" ({len(MIGRATIONS)}); upgrade amphub"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements(migration, db.dialect):
                await conn.execute(statement)
            await db.set_schema_version(conn, number)


@contextlib.asynccontextmanager
async def opened(target: Path | str, clock: Clock = system_clock) -> AsyncIterator[Database]:
    """The database for the length of a block."""
    db = await connect(target, clock)
    try:
        yield db
    finally:
        await db.close()

"""Copying a SQLite hub's metadata into an empty PostgreSQL database (`amphub admin migrate-to`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from graphlib import TopologicalSorter
from typing import Any

from amphub.db.core import Database, fetch_all
from amphub.db.sqlite_database import SqliteDatabase

ROWS_PER_STATEMENT = 500
# Kept by triggers as rows are written (the search log), or SQLite's own (full text).
_DERIVED = ("search_clock", "search_changes")


class NotEmpty(Exception):
    """The target database holds amphub data already."""


async def copy_metadata(source: SqliteDatabase, target: Database) -> dict[str, int]:
    """Copy every row of every table, parents before children; the rows copied, by table.

    The target must be at the same schema version (both were opened, so both are current)
    and hold no rows yet. Ids keep their values; the target's id counters continue after
    them. The target's own triggers (the search log) are off while rows arrive: each would
    write the search clock's one row again, which PostgreSQL makes slower with every row of
    one transaction, and no node has an index to bring up to date yet (each builds its own
    from the rows).
    """
    tables = await _tables_in_order(source)
    for table in tables:
        if await fetch_all(target, f"SELECT 1 FROM {table} LIMIT 1"):
            raise NotEmpty(f"the target database holds amphub data already (table {table})")
    copied: dict[str, int] = {}
    async with source.snapshot(), target.transaction() as conn:
        for table in tables:
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            columns = [row[1] for row in await fetch_all(source, f"PRAGMA table_info({table})")]
            marks = "(" + ", ".join("?" * len(columns)) + ")"
            copied[table] = 0
            async for part in _pages(source, table, columns):
                await conn.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                    + ", ".join([marks] * len(part)),
                    tuple(value for row in part for value in row),
                )
                copied[table] += len(part)
            await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        for table, column in await _counters(target):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
            )
    return copied


async def _pages(
    source: SqliteDatabase, table: str, columns: list[str]
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The table's rows, ROWS_PER_STATEMENT at a time in key order: memory stays bounded.

    A table's key is its rowid, or the primary key of a table WITHOUT ROWID (whose
    columns SQLite keeps NOT NULL, so comparing them never skips a row).
    """
    key = ["rowid"]
    (sql,) = (await fetch_all(source, "SELECT sql FROM sqlite_master WHERE name = ?", table))[0]
    if "WITHOUT ROWID" in sql.upper():
        info = await fetch_all(source, f"PRAGMA table_info({table})")
        key = [row[1] for row in sorted((row for row in info if row[5]), key=lambda r: r[5])]
    order = f" ORDER BY {', '.join(key)} LIMIT {ROWS_PER_STATEMENT}"
    select = f"SELECT {', '.join(key + columns)} FROM {table}"
    after = f" WHERE ({', '.join(key)}) > ({', '.join('?' * len(key))})"
    rows = await fetch_all(source, select + order)
    while rows:
        yield [tuple(row[len(key) :]) for row in rows]
        rows = await fetch_all(source, select + after + order, *rows[-1][: len(key)])


async def _tables_in_order(source: SqliteDatabase) -> list[str]:
    """The source's tables of rows, each after the tables its foreign keys name."""
    names = [
        row[0]
        for row in await fetch_all(
            source,
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'cards_fts%'",
        )
        if row[0] not in _DERIVED
    ]
    order: TopologicalSorter[str] = TopologicalSorter()
    for name in sorted(names):
        parents = await fetch_all(source, f"PRAGMA foreign_key_list({name})")
        order.add(name, *(row[2] for row in parents if row[2] != name))
    return list(order.static_order())


async def _counters(target: Database) -> list[tuple[str, str]]:
    """(table, column) of each identity column in the target."""
    rows = await fetch_all(
        target,
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    return [(row[0], row[1]) for row in rows]

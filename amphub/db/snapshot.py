"""A copy of the database taken while the server writes it, and what that copy names.

These work on files (or a PostgreSQL URL), not on a server's `Database`: `amphub backup`
runs beside the server, and must neither migrate the live database nor hold its write lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from amphub.db.core import Model

__all__ = ["copy_database", "database_problems", "models_in", "snapshot_oids"]


def copy_database(source: Path, target: Path) -> None:
    """Copy the database at one instant with SQLite's online backup API.

    One step for all pages: the copy reads one snapshot of the file (in WAL mode writers go
    on meanwhile), so it holds every transaction committed before it began, and none half.
    """
    # mode=rw: a missing database is an error, not a new empty file.
    uri = source.absolute().as_uri() + "?mode=rw"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as live:
        live.execute("PRAGMA busy_timeout=10000")
        with contextlib.closing(sqlite3.connect(target)) as copy:
            live.backup(copy, pages=-1)
            # One file, nothing beside it: a server opening it turns WAL on again.
            copy.execute("PRAGMA journal_mode=DELETE")


def database_problems(path: Path) -> list[str]:
    """What SQLite's integrity check finds wrong in a database file; empty when whole."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return [row[0] for row in rows if row[0] != "ok"]


def models_in(target: Path | str) -> list[Model]:
    """Every model a database holds (a copy, or the live one: this only reads)."""
    rows = _read(
        target,
        "SELECT space_id, id, name, visibility, owner, created_at, updated_at FROM models"
        " ORDER BY space_id, id",
    )
    return [Model(*row) for row in rows]  # the columns in the fields' order


def snapshot_oids(target: Path | str) -> list[str]:
    """Every LFS object a database (a copy, or the live one) holds a row for."""
    return [row[0] for row in _read(target, "SELECT oid FROM lfs_objects ORDER BY oid")]


def _read(target: Path | str, sql: str) -> list[Any]:
    """The rows of a query on a SQLite file, or on the PostgreSQL database at a URL."""
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            return conn.execute(sql).fetchall()
    with contextlib.closing(sqlite3.connect(target)) as conn:
        return conn.execute(sql).fetchall()

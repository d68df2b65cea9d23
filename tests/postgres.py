"""Debian's PostgreSQL for the tests: one server per session on a loopback port, in a temp dir.

initdb and pg_ctl come from /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run
as root, so under root (as in CI) the server runs as the `postgres` user the package makes.
Each test that asks for a database gets a new one of its own: `fresh_database` holds
amphub's schema already (copied from a template migrated once per session, which takes
milliseconds where migrating takes half a second), `empty_database` nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from amphub import db

PASSWORD = "amphub-tests"


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL here: install Debian's postgresql package")
    return found[-1].parent


class PostgreSQL:
    """A running server; `url(name)` is the address of one of its databases."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.bin = _binaries()
        self.as_user: list[str] = []
        self._template: str | None = None
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, cwd="/")

    def start(self, *settings: str) -> None:
        """initdb, then start the server; `settings` are more `name=value` for its `-c`."""
        data = self.folder / "data"
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD)
        if self.as_user:
            shutil.chown(password_file, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "amphub",
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder}"
            " -c fsync=off -c full_page_writes=off -c max_connections=300"
            + "".join(f" -c {setting}" for setting in settings)
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        # Immediate: the cluster is thrown away, so a shutdown checkpoint of the hundreds of
        # databases a run makes would be written for nothing.
        data = str(self.folder / "data")
        self._run(str(self.bin / "pg_ctl"), "-D", data, "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://amphub:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str = "template0") -> str:
        """A new database, a copy of `template`; its URL."""
        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def migrated_template(self) -> str:
        """The name of a database at amphub's current schema, made on first use."""
        if self._template is None:
            url = self.create_database()

            async def migrate() -> None:
                async with db.opened(url):
                    pass

            # Not on the test's event loop: this fixture is not async.
            with concurrent.futures.ThreadPoolExecutor(1) as thread:
                thread.submit(asyncio.run, migrate()).result()
            self._template = url.rsplit("/", 1)[1]
        return self._template


@contextlib.contextmanager
def running_postgresql(port: int, *settings: str) -> Iterator[PostgreSQL]:
    """A server on `port` in a temp dir of its own, for the length of a block."""
    # Not under pytest's temp dir: that is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="amphub-postgresql-"))
    server = PostgreSQL(folder, port)
    try:
        server.start(*settings)
        yield server
    finally:
        if (folder / "data" / "postmaster.pid").exists():
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgreSQL]:
    from tests.conftest import free_port

    with running_postgresql(free_port()) as server:
        yield server


@pytest.fixture
def fresh_database(postgresql: PostgreSQL) -> str:
    """The URL of a new PostgreSQL database with amphub's schema and no rows of its own."""
    return postgresql.create_database(postgresql.migrated_template())


@pytest.fixture
def empty_database(postgresql: PostgreSQL) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return postgresql.create_database()

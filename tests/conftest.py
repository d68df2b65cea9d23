"""A real amphub on a loopback port, driven by the real git and an HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import socket
import sqlite3
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestServer
from rich.console import Console

from amphub.clock import system_clock
from amphub.config import Config
from amphub.db.dialect import postgresql_sql
from amphub.http import keys
from amphub.server.app import bootstrap, create_app
from amphub.server.connections import HubRunner
from amphub.tui.app import ConsoleApp
from amphub.tui.client import ApiClient

GIB = 1024**3
# The `nginx` fixture: a load balancer in front of amphub nodes; `postgresql` and
# `fresh_database`: a PostgreSQL server and a new database on it.
pytest_plugins = ["tests.load_balancer", "tests.postgres"]


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the machine's git configuration and prompts out of every test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("GIT_ASKPASS", "")
    monkeypatch.delenv("SSH_ASKPASS", raising=False)
    for name in list(os.environ):
        if name.startswith("AMPHUB_"):
            monkeypatch.delenv(name)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Tester\n\temail = tester@example.com\n"
        "[init]\n\tdefaultBranch = master\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    return home


@dataclass
class GitResult:
    returncode: int
    stdout: str
    stderr: str


async def git(*args: str, cwd: Path | None = None, check: bool = True, **env: str) -> GitResult:
    """Run the real git without blocking the event loop the server shares."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await proc.communicate()
    result = GitResult(proc.returncode, out.decode(), err.decode())
    if check and result.returncode:
        raise AssertionError(f"git {' '.join(args)} failed:\n{result.stderr}")
    return result


@dataclass
class Hub:
    """A running server and the keys to use it."""

    server: TestServer | None
    session: aiohttp.ClientSession
    admin_key: str
    data_dir: Path
    keys: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # a server started as a separate process
    stored: Any = None  # a StoredBytes of its object store, where a test gave one

    @property
    def base(self) -> str:
        return self.url or str(self.server.make_url("")).rstrip("/")

    @property
    def database_target(self) -> Path | str:
        """Its database: the SQLite file, or the PostgreSQL URL."""
        if self.server is not None:
            return self.server.app[keys.HUB].config.database_target
        return self.data_dir / "amphub.db"

    def remote(self, space: str, model: str, user: str | None = "admin") -> str:
        """The clone URL, with credentials in it unless `user` is None."""
        if user is None:
            return f"{self.base}/{space}/{model}.git"
        key = self.admin_key if user == "admin" else self.keys[user]
        return re.sub(r"^http://", f"http://{user}:{key}@", f"{self.base}/{space}/{model}.git")

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        user: str | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """An API call as `user` (the admin by default, nobody with user='')."""
        headers = dict(headers or {})
        if key is None and user != "":
            key = self.admin_key if user in (None, "admin") else self.keys[user]
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=headers
        ) as resp:
            body = await resp.read()
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, body.decode(errors="replace")

    async def user(self, name: str, *, creator: bool = False, admin: bool = False) -> str:
        status, body = await self.call(
            "POST", "/api/v1/users", json={"name": name, "creator": creator, "admin": admin}
        )
        assert status == 201, body
        self.keys[name] = body["key"]
        return body["key"]

    async def space(self, space_id: str = "team", owner: str = "admin", **extra: Any) -> dict:
        body = {
            "id": space_id,
            "name": space_id.title(),
            "quota": 10 * GIB,
            "billing_mode": "monthly",
            **extra,
        }
        status, answer = await self.call("POST", "/api/v1/spaces", user=owner, json=body)
        assert status == 201, answer
        return answer

    async def model(self, space: str, model: str, owner: str = "admin", **extra: Any) -> dict:
        status, answer = await self.call(
            "POST", f"/api/v1/spaces/{space}/models", user=owner, json={"id": model, **extra}
        )
        assert status == 201, answer
        return answer

    async def space_and_model(
        self, space: str = "team", model: str = "m1", owner: str = "admin", **extra: Any
    ) -> dict:
        """A new space and a model in it (with `extra` settings), both owned by `owner`."""
        await self.space(space, owner=owner)
        return await self.model(space, model, owner=owner, **extra)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class HubTestServer(TestServer):
    """aiohttp's test server, serving the app the way `amphub serve` does."""

    async def _make_runner(self, **kwargs: Any) -> HubRunner:
        return HubRunner(self.app, **kwargs)


async def start_hub(
    data_dir: Path, clock: Callable[[], datetime] = system_clock, **settings: Any
) -> tuple[TestServer, str | None]:
    config = Config(data_dir=data_dir, **settings)
    key = await bootstrap(config, clock)
    server = HubTestServer(create_app(config, clock), host="127.0.0.1")
    await server.start_server()
    return server, key


@contextlib.asynccontextmanager
async def running_hub(
    data_dir: Path, clock: Callable[[], datetime] = system_clock, **settings: Any
) -> AsyncIterator[Hub]:
    """A hub serving `data_dir` on a loopback port, with a client session; closed after."""
    server, key = await start_hub(data_dir, clock, **settings)
    try:
        async with aiohttp.ClientSession() as session:
            yield Hub(server, session, key, data_dir)
    finally:
        await server.close()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data") as running:
        yield running


@pytest.fixture
def database() -> str:
    """The `database` setting of tests that run on either engine (test_pg_nodes: PostgreSQL)."""
    return "sqlite"


@pytest.fixture
async def model_repo(hub: Hub) -> tuple[str, str]:
    """A space `team` with a model `m1` owned by the admin."""
    await hub.space_and_model("team", "m1")
    return "team", "m1"


def write_files(work: Path, files: Mapping[str, bytes | str]) -> None:
    """Write each file (text as UTF-8) under `work`, making the folders it needs."""
    for name, data in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())


async def commit(work: Path, files: Mapping[str, bytes | str], message: str = "files") -> str:
    """Write `files` in the clone `work` and commit them; the new commit id."""
    write_files(work, files)
    await git("add", "--", *files, cwd=work)
    await git("commit", "-q", "-m", message, cwd=work)
    return (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()


async def push(
    work: Path,
    files: Mapping[str, bytes | str],
    message: str = "files",
    *,
    clone: str | None = None,
    branch: str | None = None,
    tag: str | None = None,
) -> str:
    """Commit `files` in the clone `work` and push them; the new commit id.

    `clone` is the URL `work` is cloned from when it is not there yet. With `branch`, the
    commit goes on that branch (made from the current commit when new); with `tag`, it is
    tagged and the tag pushed too. LFS applies where `git lfs install` ran first.
    """
    if clone is not None and not work.exists():
        await git("clone", "-q", clone, str(work))
    if branch is not None:
        await git("checkout", "-q", "-B", branch, cwd=work)
    head = await commit(work, files, message)
    refs = ["HEAD"] if tag is None else ["HEAD", tag]
    if tag is not None:
        await git("tag", tag, cwd=work)
    await git("push", "-q", "origin", *refs, cwd=work)
    return head


async def push_readme(hub: Hub, tmp_path: Path, space: str, model: str, text: str) -> str:
    """Push `text` as the model's README.md; the new head, once the card is read from it."""
    work = tmp_path / f"{space}-{model}"
    head = await push(work, {"README.md": text}, "card", clone=hub.remote(space, model))
    await wait_for_card(hub, space, model, head)
    return head


async def wait_for_card(hub: Hub, space: str, model: str, commit: str) -> dict:
    for _ in range(100):
        _, body = await hub.call("GET", f"/api/v1/models/{space}/{model}")
        if body.get("card_commit") == commit:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"card of {space}/{model} never reached {commit}")


async def wait_task(
    hub: Hub, task_id: int, user: str = "admin", until=("succeeded", "failed", "canceled")
) -> dict:
    """The task once its status is one of `until`; a hang guard fails the test after 2 minutes."""
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        status, task = await hub.call("GET", f"/api/v1/tasks/{task_id}", user=user)
        assert status == 200, task
        if task["status"] in until:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} stuck: {task}")


async def start_server(data: Path, port: int, **options: Any) -> asyncio.subprocess.Process:
    """`amphub serve` as a process of its own, its output piped (`options` go to exec)."""
    options = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.STDOUT, **options}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amphub", "serve", "--data", str(data), "--port", str(port), **options
    )


async def read_until(proc, marker: str) -> list[str]:
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "\n".join(lines)
        lines.append(line.strip())
        if marker in line:
            return lines


class ServerProcess:
    """`amphub serve` in a process of its own, on one port across restarts."""

    def __init__(self, data: Path, **environ: str) -> None:
        self.data, self.port = data, free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.key = ""
        self.environ = environ  # AMPHUB_* settings of this process, beside the test's own

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running process's id."""
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.proc = await start_server(self.data, self.port, env={**os.environ, **self.environ})
        lines = await read_until(self.proc, "listening")
        for line in lines:
            if line.startswith("administrator key"):
                self.key = line.split(": ")[1]
        self._drain = asyncio.ensure_future(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 30)
        await asyncio.wait_for(self._drain, 30)  # children holding the output end too

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), 30)
        await asyncio.wait_for(self._drain, 30)


async def stored_content(store: Any, oid: str) -> bytes:
    """An object's bytes as the hub's store (either kind) gives them."""
    return b"".join([piece async for piece in store.read(oid)])


def on_s3(hub: Hub) -> bool:
    """Whether the hub keeps its LFS objects in a bucket."""
    return hub.server.app[keys.HUB].config.storage != "local"


async def write_from_outside(target: Path | str, *statements: tuple[str, tuple]) -> None:
    """Change the database through a connection of its own, as `amphub admin` would.

    On a thread: the server runs on the test's event loop, and a write waiting for the
    server's transaction must leave the loop free for the server to finish it.
    """
    await asyncio.to_thread(_outside, target, statements)


async def read_from_outside(target: Path | str, sql: str, *params: Any) -> list[tuple]:
    """The rows of a query, read through a connection of its own."""
    return await asyncio.to_thread(_outside, target, [(sql, params)])


def _outside(target: Path | str, statements: Sequence[tuple[str, tuple]]) -> list[tuple]:
    """Run statements in one transaction on a connection of their own; the last one's rows."""
    rows: list[tuple] = []
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            for sql, params in statements:
                cursor = conn.execute(postgresql_sql(sql), params)
                rows = [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        return rows
    with contextlib.closing(sqlite3.connect(target, timeout=60)) as conn, conn:
        for sql, params in statements:
            rows = conn.execute(sql, params).fetchall()
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The admin console (amphub tui), run with Textual's Pilot against a real server.

TUI_DEADLINE = float(
    os.environ.get("TUI_DEADLINE", "60")
)  # a hang guard on a loaded machine, never a speed check


async def until(pilot: Any, condition: Callable[[], Any], what: str) -> None:
    """Let the console run until `condition()` (sync or async) holds."""
    deadline = asyncio.get_running_loop().time() + TUI_DEADLINE
    while True:
        found = condition()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


@contextlib.asynccontextmanager
async def console(
    hub: Hub,
    *,
    key: str | None = None,
    size: tuple[int, int] = (120, 40),
    messages: list | None = None,
    signed_in: bool = True,
):
    """The console on `hub` (as the admin by default), with its pilot.

    With `signed_in`, it is given time to sign in and load its first tab.
    """
    app = ConsoleApp(ApiClient(hub.base, key or hub.admin_key), retry_seconds=0.2)
    hook = messages.append if messages is not None else None
    async with app.run_test(size=size, message_hook=hook) as pilot:
        if signed_in:
            await until(pilot, lambda: app.user_label and app.active_pane.loaded, "sign-in")
        yield app, pilot


def posted(messages: list, kind: type) -> list:
    """The messages of one kind, each once (the hook sees a message at every hop it bubbles)."""
    unique = {id(message): message for message in messages if isinstance(message, kind)}
    return list(unique.values())


def shown(widget: Any) -> str:
    """The plain text a Static widget shows, its tables and colours flattened."""
    out = Console(width=160, record=True, file=io.StringIO())
    out.print(widget.content)
    return out.export_text()


# LFS objects in an S3 bucket: one SeaweedFS for the whole run, a fresh bucket per test.

S3_KEY, S3_SECRET = "amphub-test", "amphub-test-secret"
# One bucket, a prefix per test: each bucket is a SeaweedFS collection with volumes of its own.
S3_BUCKET = "amphub-tests"
# A SeaweedFS with an identity checks every signature, so a presigned PUT that signs
# x-amz-checksum-sha256 is refused without that header: the direct-upload probe passes.
S3_IDENTITIES = {
    "identities": [
        {
            "name": "amphub",
            "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


@dataclass
class SeaweedFS:
    endpoint: str
    metrics: str  # its Prometheus counters: what the store itself saw

    def client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def counted(self, name: str) -> float:
        """The sum of a counter of the store's own, over its samples for the tests' bucket."""
        with urllib.request.urlopen(self.metrics) as answer:
            text = answer.read().decode()
        label = f'bucket="{S3_BUCKET}"'
        samples = [
            row.rpartition(" ")
            for row in text.splitlines()
            if row.startswith(name + "{") and label in row.partition("}")[0]
        ]
        return sum(float(value) for _, _, value in samples)


def _free_port_pair() -> int:
    """A free port whose gRPC twin (port + 10000, as weed picks it) is free too."""
    while True:
        port = free_port()
        if port >= 55000:
            continue
        with contextlib.suppress(OSError), socket.socket() as twin:
            twin.bind(("127.0.0.1", port + 10000))
            return port


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SeaweedFS (master, volume, filer and S3 gateway) on loopback ports for the run."""
    import json
    import shutil
    import signal
    import subprocess
    import time

    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    (root / "s3.json").write_text(json.dumps(S3_IDENTITIES))
    ports = {name: _free_port_pair() for name in ("s3", "master", "volume", "filer", "metrics")}
    command = [
        weed, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.config={root / 's3.json'}",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}", "-master.volumeSizeLimitMB=64",
        f"-metricsPort={ports['metrics']}",
        # Off: the catalog listeners' fixed ports would clash between runs; no reports out.
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
    ]  # fmt: skip
    log = (root / "weed.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    store = SeaweedFS(
        f"http://127.0.0.1:{ports['s3']}", f"http://127.0.0.1:{ports['metrics']}/metrics"
    )
    try:
        client = store.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=S3_BUCKET)
                client.put_object(Bucket=S3_BUCKET, Key="probe", Body=b"x")
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((root / "weed.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield store
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def s3_bucket(seaweedfs: SeaweedFS) -> dict[str, Any]:
    """A hub's settings for objects under a new prefix of the bucket, with credentials."""
    import secrets

    return {
        "storage": f"s3://{S3_BUCKET}/{secrets.token_hex(6)}",
        "s3_endpoint": seaweedfs.endpoint,
        "s3_access_key_id": S3_KEY,
        "s3_secret_access_key": S3_SECRET,
    }


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings of each object store in turn: the data dir's, then an S3 bucket."""
    if request.param == "local":
        return {}
    return request.getfixturevalue("s3_bucket")


class StoredBytes:
    """Objects' bytes as the hub's store keeps them, read and changed behind the hub's back."""

    def __init__(self, data_dir: Path, settings: Mapping[str, Any], s3: SeaweedFS | None):
        self.root = data_dir / "lfs"
        self.s3 = s3.client() if s3 else None
        location = str(settings.get("storage", "")).removeprefix("s3://")
        self.bucket, _, prefix = location.partition("/")
        self.prefix = f"{prefix}/" if prefix else ""

    def _key(self, oid: str) -> str:
        return f"{self.prefix}{oid[:2]}/{oid[2:4]}/{oid}"

    def _path(self, oid: str) -> Path:
        return self.root / "objects" / oid[:2] / oid[2:4] / oid

    def read(self, oid: str) -> bytes | None:
        if self.s3 is None:
            path = self._path(oid)
            return path.read_bytes() if path.is_file() else None
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self._key(oid))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def write(self, oid: str, data: bytes) -> None:
        if self.s3 is None:
            self._path(oid).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=self._key(oid), Body=data)

    def delete(self, oid: str) -> None:
        if self.s3 is None:
            self._path(oid).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(oid))

    def quarantined(self, oid: str) -> bool:
        if self.s3 is None:
            return (self.root / "quarantine" / oid).is_file()
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}quarantine/{oid}")
        return found.get("KeyCount", 0) == 1

    def half_received(self) -> list[str]:
        """Objects being received: temporary files beside their place, or multipart uploads."""
        if self.s3 is None:
            return [str(p) for p in self.root.rglob("*.part")]
        listed = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        uploads = listed.get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    def keys(self) -> list[str]:
        """Every key under the hub's prefix (S3 only)."""
        assert self.s3 is not None
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def stored_bytes(
    tmp_path: Path, storage: dict[str, Any], request: pytest.FixtureRequest
) -> StoredBytes:
    """The objects of the hub on `tmp_path / "data"` with `storage`'s store."""
    s3 = request.getfixturevalue("seaweedfs") if storage else None
    return StoredBytes(tmp_path / "data", storage, s3)

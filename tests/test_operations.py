"""What a load balancer and a monitoring system use: health, readiness, metrics, node
names in task records and logs, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    GitResult,
    Hub,
    commit,
    free_port,
    git,
    read_until,
    running_hub,
    start_server,
    wait_task,
)


@pytest.fixture
async def node_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", node="n7") as running:
        yield running


async def test_health_and_ready_answer_without_a_key(node_hub: Hub):
    hub = node_hub
    assert await hub.call("GET", "/-/health", user="") == (200, {"status": "ok", "node": "n7"})
    assert await hub.call("GET", "/-/ready", user="") == (200, {"status": "ready", "node": "n7"})


@pytest.mark.parametrize(
    ("folder", "part"), [("repos", "repositories"), ("lfs/objects", "object store")]
)
async def test_ready_says_what_is_unreachable(node_hub: Hub, folder: str, part: str):
    hub = node_hub
    there, away = hub.data_dir / folder, hub.data_dir / "away"
    there.rename(away)
    try:
        status, body = await hub.call("GET", "/-/ready", user="")
    finally:
        away.rename(there)
    assert (status, body) == (
        503,
        {"status": "unready", "node": "n7", "reasons": [f"{part}: FileNotFoundError"]},
    )
    assert (await hub.call("GET", "/-/ready", user=""))[0] == 200


async def test_tasks_name_the_node_that_ran_them(node_hub: Hub):
    hub = node_hub
    await hub.space_and_model("team", "m1")
    status, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    assert status == 201, task
    assert task["node"] is None  # queued: no node has started it yet
    done = await wait_task(hub, task["id"])
    assert (done["status"], done["node"]) == ("succeeded", "n7")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition, 0 when it is not there."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


async def test_metrics_count_requests_bytes_tasks_and_verdicts(node_hub: Hub, tmp_path: Path):
    hub = node_hub
    await hub.space_and_model("team", "m1")
    await hub.user("dev")
    assert (await hub.call("GET", "/-/metrics", user=""))[0] == 401
    assert (await hub.call("GET", "/-/metrics", user="dev"))[0] == 403
    assert (await hub.call("GET", "/api/v1/models/team/nothing"))[0] == 404
    await git("clone", "-q", hub.remote("team", "m1"), str(tmp_path / "clone"))
    _, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    await wait_task(hub, task["id"])

    async with hub.session.get(
        hub.base + "/-/metrics", headers={"Authorization": f"Bearer {hub.admin_key}"}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    assert sample(text, "amphub_requests_total", family="api", status="404") == 1
    assert sample(text, "amphub_requests_total", family="api", status="401") == 1
    # git asks without credentials first, then (protocol v2) for the capabilities, the refs
    # and the pack.
    assert sample(text, "amphub_requests_total", family="git", status="401") == 1
    assert sample(text, "amphub_requests_total", family="git", status="200") == 3
    assert sample(text, "amphub_request_seconds_count", family="git") == 4
    assert sample(text, "amphub_body_bytes_total", family="git", direction="in") > 0
    assert sample(text, "amphub_body_bytes_total", family="git", direction="out") > 1000
    assert sample(text, "amphub_task_outcomes_total", kind="scan", outcome="succeeded") == 1
    # The new model's README.md and .gitattributes.
    assert sample(text, "amphub_scan_verdicts_total", verdict="safe") == 2
    assert sample(text, "amphub_tasks", status="queued") == 0
    assert sample(text, "amphub_tasks", status="running") == 0
    assert sample(text, "process_resident_memory_bytes") > 0
    assert "amphub_database_connections{" not in text  # SQLite: one file, no pool


async def test_access_lines_as_json_name_the_node_and_leave_out_the_query(tmp_path: Path):
    env = {**os.environ, "AMPHUB_LOG_FORMAT": "json", "AMPHUB_NODE": "n1"}
    port = free_port()
    proc = await start_server(tmp_path / "data", port, env=env)
    try:
        await read_until(proc, "listening")
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/-/health?signature=secret-token"
            async with session.get(url) as resp:
                assert resp.status == 401
        lines = await read_until(proc, "amphub.access")
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    access = json.loads(lines[-1])
    assert {key: access[key] for key in ("node", "logger", "method", "path", "status")} == {
        "node": "n1",
        "logger": "amphub.access",
        "method": "GET",
        "path": "/-/health",
        "status": 401,
    }
    assert "secret-token" not in "\n".join(lines) + rest
    said = [json.loads(line) for line in rest.splitlines()]
    assert [line["message"] for line in said][-1] == "stopped"
    assert {line["node"] for line in said} == {"n1"}
    assert proc.returncode == 0


class HeldPush:
    """A TCP relay to a server that holds a receive-pack request after its headers.

    The server then has a push under way, for as long as the test likes.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.held = asyncio.Event()  # a push's headers went through; its body waits
        self.release = asyncio.Event()
        self.relays: set[asyncio.Task] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _connection(self, client_in, client_out) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.port)
        up = asyncio.ensure_future(self._copy(client_in, server_out, hold=True))
        down = asyncio.ensure_future(self._copy(server_in, client_out, hold=False))
        self.relays |= {up, down}
        await asyncio.gather(up, down, return_exceptions=True)
        client_out.close()

    async def _copy(self, source, sink, *, hold: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                end = data.find(b"\r\n\r\n") + 4
                if hold and b"POST " in data and b"git-receive-pack" in data and end > 3:
                    sink.write(data[:end])
                    await sink.drain()
                    self.held.set()
                    await self.release.wait()
                    data = data[end:]
                sink.write(data)
                await sink.drain()
            sink.close()

    async def close(self) -> None:
        self.server.close()
        for relay in self.relays:
            relay.cancel()
        await asyncio.gather(*self.relays, return_exceptions=True)


@contextlib.asynccontextmanager
async def silent_target() -> AsyncIterator[str]:
    """A deploy target that takes the request and never answers: its task runs until stopped."""
    app = web.Application()

    async def hang(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app.router.add_post("/deploy", hang)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/deploy"))
    finally:
        await server.close()


async def serve(data: Path, port: int, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    """`amphub serve --node n1` in its own process, and the administrator's key."""
    proc = await start_server(data, port, env={**os.environ, **env})
    lines = await read_until(proc, "listening")
    key = next(line.split(": ")[1] for line in lines if line.startswith("administrator key"))
    return proc, key


async def refused(port: int) -> None:
    """Wait until the port takes no more connections."""
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        writer.close()
        await asyncio.sleep(0.02)
    raise AssertionError(f"port {port} still takes connections")


async def test_sigterm_finishes_the_push_under_way_and_hands_back_the_running_task(
    tmp_path: Path,
):
    data, port = tmp_path / "data", free_port()
    proc, key = await serve(data, port, AMPHUB_NODE="n1")
    held = HeldPush(port)
    relay_port = await held.start()
    async with aiohttp.ClientSession() as session, silent_target() as target:
        hub = Hub(None, session, key, data, url=f"http://127.0.0.1:{port}")
        await hub.space_and_model("team", "m1")
        body = {"name": "silent", "url": target, "secret": "s"}
        assert (await hub.call("POST", "/api/v1/deploy-targets", json=body))[0] == 201
        body = {"ref": "master", "target": "silent", "service": "chat", "replicas": 1}
        status, task = await hub.call("POST", "/api/v1/models/team/m1/deployments", json=body)
        assert status == 201, task
        task_id = task["id"]
        await wait_task(hub, task_id, until=("running",))

        work = tmp_path / "work"
        await git("clone", "-q", hub.remote("team", "m1"), str(work))
        head = await commit(work, {"weights.txt": "pushed while the server stops\n"})
        remote = hub.remote("team", "m1").replace(f":{port}/", f":{relay_port}/")
        pushing = asyncio.ensure_future(git("push", "-q", remote, "HEAD:master", cwd=work))
        await asyncio.wait_for(held.held.wait(), 30)
        proc.send_signal(signal.SIGTERM)
        await refused(port)  # stopped accepting, with the push still under way
        held.release.set()
        assert (await asyncio.wait_for(pushing, 60)).returncode == 0
        output = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
        await held.close()
    assert proc.returncode == 0, output
    assert " n1 INFO amphub.access: " in output and " n1 INFO amphub: stopping" in output
    stored = await git("--git-dir", str(data / "repos/team/m1.git"), "rev-parse", "master")
    assert stored.stdout.strip() == head
    with sqlite3.connect(data / "amphub.db") as conn:
        row = conn.execute(
            "SELECT status, attempts, node, message FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
    assert row == ("queued", 0, "n1", "handed back by a stopping node; queued again")


async def push_held_at_a_stop(
    tmp_path: Path, timeout: str, stop: Callable[[asyncio.subprocess.Process], Awaitable[None]]
) -> tuple[asyncio.subprocess.Process, str, float, GitResult]:
    """A push whose body the relay holds while `stop` signals the server (with this
    shutdown timeout): the process, its output, seconds from `stop`'s end to its exit, and
    the push's result."""
    data, port = tmp_path / "data", free_port()
    proc, key = await serve(data, port, AMPHUB_SHUTDOWN_TIMEOUT=timeout)
    held = HeldPush(port)
    relay_port = await held.start()
    async with aiohttp.ClientSession() as session:
        hub = Hub(None, session, key, data, url=f"http://127.0.0.1:{relay_port}")
        await hub.space_and_model("team", "m1")
        work = tmp_path / "work"
        await git("clone", "-q", hub.remote("team", "m1"), str(work))
        await commit(work, {"weights.txt": "never arrives\n"})
        pushing = asyncio.ensure_future(
            git("push", "-q", "origin", "HEAD:master", cwd=work, check=False)
        )
        await asyncio.wait_for(held.held.wait(), 30)
        await stop(proc)
        started = asyncio.get_running_loop().time()
        output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
        stopped = asyncio.get_running_loop().time() - started
        held.release.set()
        result = await asyncio.wait_for(pushing, 60)
        await held.close()
    return proc, output, stopped, result


async def test_a_push_past_the_shutdown_timeout_is_cut(tmp_path: Path):
    async def stop(proc: asyncio.subprocess.Process) -> None:
        proc.send_signal(signal.SIGTERM)

    proc, _, stopped, result = await push_held_at_a_stop(tmp_path, "1", stop)
    assert proc.returncode == 0
    assert result.returncode != 0
    assert stopped < 10  # the one second, not aiohttp's own minute


async def test_a_second_stop_signal_cuts_the_requests_under_way_at_once(tmp_path: Path):
    async def stop_twice(proc: asyncio.subprocess.Process) -> None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        assert proc.returncode is None  # the push has its ten minutes
        proc.send_signal(signal.SIGTERM)

    proc, output, stopped, result = await push_held_at_a_stop(tmp_path, "600", stop_twice)
    assert proc.returncode == 0
    assert result.returncode != 0
    assert stopped < 10
    assert "stopping now: requests under way are cut" in output


async def test_a_log_reader_that_stops_reading_holds_no_request(tmp_path: Path):
    # 300 access lines of 2 KB: more than the pipe and the reader's buffer hold (192 KiB)
    # before the test reads them at the end.
    port = free_port()
    proc = await start_server(tmp_path / "data", port)
    await read_until(proc, "listening")
    agent = "a" * 2000

    async def ask(session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            url = f"http://127.0.0.1:{port}/-/health"
            async with session.get(url, headers={"User-Agent": agent}) as resp:
                assert resp.status == 200

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.wait_for(ask(session), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    assert output.count('"GET /-/health" 200') == 300  # each written once it could be

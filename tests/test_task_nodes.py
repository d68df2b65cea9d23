"""The task queue across nodes: two `amphub serve` processes sharing one data dir.

The tasks are deploys to a stand-in inference service that counts the posts of each
deployment (one per run of its task) and can hold a post open: a task that runs, without
progress reports, for as long as a test wants.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amphub.config import Config
from tests.conftest import Hub, ServerProcess, read_from_outside

LEASE = 3  # seconds: renewed every second, lapsed 3 to 4 s after a node's last renewal
SETTLE = 2 * LEASE + 2  # long enough for a lease to lapse and the task to be taken over
FINISHED = ("succeeded", "failed", "canceled")


@dataclass
class Service:
    """A deploy target: counts posts by deployment, holds those it is told to."""

    posts: Counter[int] = field(default_factory=Counter)
    hold: bool = False  # each deployment's first post waits until released
    released: asyncio.Event = field(default_factory=asyncio.Event)
    delay: float = 0.0

    async def deploy(self, request: web.Request) -> web.Response:
        deployment = json.loads(await request.read())["deployment"]
        self.posts[deployment] += 1
        if self.hold and self.posts[deployment] == 1:
            await self.released.wait()
        await asyncio.sleep(self.delay)
        return web.json_response({"instance": f"i-{deployment}", "status": "running"})


@dataclass
class Nodes:
    """Two nodes of one hub, a client of each, and the deploy target."""

    servers: dict[str, ServerProcess]
    hubs: dict[str, Hub]
    service: Service
    database_target: Path | str

    async def deploy(self, through: str) -> tuple[int, int]:
        """Queue a deploy through a node: (task id, deployment id)."""
        body = {"ref": "master", "target": "serving", "service": "chat", "replicas": 1}
        status, task = await self.hubs[through].call(
            "POST", "/api/v1/models/team/m1/deployments", json=body
        )
        assert status == 201, task
        return task["id"], task["deployment"]["id"]

    async def task(self, task_id: int, until: tuple[str, ...], within: float = 20) -> dict:
        """The task once its status is one of `until`, asked of each live node in turn."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for name, hub in self.hubs.items():
                if self.servers[name].proc.returncode is not None:
                    continue
                status, task = await hub.call("GET", f"/api/v1/tasks/{task_id}")
                assert status == 200, task
                if task["status"] in until:
                    return task
                assert asyncio.get_running_loop().time() < deadline, task
                await asyncio.sleep(0.05)

    async def running(self, task_id: int, deployment: int) -> dict:
        """The task once it runs and its post reached the service (where it is held)."""
        task = await self.task(task_id, ("running",))
        for _ in range(400):
            if self.service.posts[deployment]:
                return task
            await asyncio.sleep(0.05)
        raise AssertionError(f"deployment {deployment} was never posted")

    async def attempts(self, task_id: int) -> int:
        sql = "SELECT attempts FROM tasks WHERE id = ?"
        return (await read_from_outside(self.database_target, sql, task_id))[0][0]


@contextlib.asynccontextmanager
async def stand_in() -> AsyncIterator[tuple[Service, str]]:
    service = Service()
    app = web.Application()
    app.router.add_post("/deploy", service.deploy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield service, str(server.make_url("/deploy"))
    finally:
        service.released.set()
        await server.close()


@pytest.fixture
async def nodes(tmp_path, database) -> AsyncIterator[Nodes]:
    data = tmp_path / "data"
    settings = {"AMPHUB_TASK_LEASE_SECONDS": str(LEASE), "AMPHUB_DATABASE": database}
    servers = {name: ServerProcess(data, AMPHUB_NODE=name, **settings) for name in ("a", "b")}
    async with stand_in() as (service, url), aiohttp.ClientSession() as session:
        await servers["a"].start()  # the first start creates the hub and prints the key
        key = servers["a"].key
        hubs = {name: Hub(None, session, key, data, url=s.url) for name, s in servers.items()}
        await asyncio.gather(servers["b"].start(), prepare(hubs["a"], url))
        try:
            target = Config(data_dir=data, database=database).database_target
            yield Nodes(servers, hubs, service, target)
        finally:
            for server in servers.values():
                if server.proc is not None and server.proc.returncode is None:
                    await server.stop()


async def prepare(hub: Hub, target_url: str) -> None:
    """A model to deploy, and the stand-in as its deploy target."""
    await hub.space_and_model("team", "m1")
    status, answer = await hub.call(
        "POST", "/api/v1/deploy-targets", json={"name": "serving", "url": target_url, "secret": "s"}
    )
    assert status == 201, answer


def other(node: str) -> str:
    return "b" if node == "a" else "a"


async def test_two_nodes_share_the_queue_and_leave_each_others_tasks_alone(nodes: Nodes):
    # Many tasks queued through both nodes: each runs once, on one of them.
    nodes.service.delay = 0.2
    queued = [await nodes.deploy(through="ab"[n % 2]) for n in range(12)]
    done = [await nodes.task(task_id, FINISHED) for task_id, _ in queued]
    assert {task["status"] for task in done} == {"succeeded"}
    assert {task["node"] for task in done} == {"a", "b"}
    assert nodes.service.posts == Counter({deployment: 1 for _, deployment in queued})
    assert {await nodes.attempts(task_id) for task_id, _ in queued} == {1}

    # A node restarted while the other runs a task leaves that task alone...
    nodes.service.hold = True
    task_id, deployment = await nodes.deploy(through="a")
    running = await nodes.running(task_id, deployment)
    restarted = other(running["node"])
    await nodes.servers[restarted].stop()
    await nodes.servers[restarted].start()
    await asyncio.sleep(1)  # its workers have looked at the queue
    still = await nodes.task(task_id, ("running", "queued", *FINISHED))
    assert (still["status"], still["node"]) == ("running", running["node"]), still
    assert await nodes.attempts(task_id) == 1

    # ...and a cancel through it stops the task on the other node, which reports no
    # progress while its post is held: its lease renewal sees the cancel.
    status, _ = await nodes.hubs[restarted].call("POST", f"/api/v1/tasks/{task_id}/cancel")
    assert status == 200
    done_there = await nodes.task(task_id, FINISHED, within=LEASE)
    assert (done_there["status"], done_there["node"]) == ("canceled", running["node"]), done_there
    assert nodes.service.posts[deployment] == 1


async def test_a_killed_nodes_task_is_taken_over_when_its_lease_lapses(nodes: Nodes):
    nodes.service.hold = True
    task_id, deployment = await nodes.deploy(through="a")
    running = await nodes.running(task_id, deployment)
    await nodes.servers[running["node"]].kill()
    done = await nodes.task(task_id, FINISHED, within=SETTLE)
    assert (done["status"], done["node"]) == ("succeeded", other(running["node"])), done
    assert nodes.service.posts[deployment] == 2
    assert await nodes.attempts(task_id) == 2

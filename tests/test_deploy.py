"""Deploy to an inference service: a stand-in service that checks signatures, clones the
model with the key it was given and reports its state back, against a real amphub."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import ANY

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amphub.tasks import deploy as deploy_task
from tests.conftest import FakeClock, Hub, git, push, running_hub, wait_task

SECRET = "target-shared-secret"
MIB = 1024 * 1024


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class StandIn:
    """An inference service: accepts deployments, clones them, reports status."""

    workdir: Path
    fail_next: list[int] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    clones: dict[int, Path] = field(default_factory=dict)
    reports: list[tuple[dict, int]] = field(default_factory=list)
    tasks: set = field(default_factory=set)
    attempts: int = 0  # posts to /deploy, good or not

    async def deploy(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        stamp = request.headers.get("X-Amphub-Timestamp", "0")
        expected = signature(SECRET, int(stamp), body)
        if not hmac.compare_digest(expected, request.headers.get("X-Amphub-Signature", "")):
            self.refused.append("bad signature")
            return web.json_response({"error": {"message": "bad signature"}}, status=401)
        if abs(time.time() - int(stamp)) > 300:
            self.refused.append("stale")
            return web.json_response({"error": {"message": "stale"}}, status=401)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return web.json_response(
                {"error": {"message": f"no capacity ({status})"}}, status=status
            )
        description = json.loads(body)
        self.received.append(description)
        job = asyncio.create_task(self._start(description))
        self.tasks.add(job)
        instance = f"{description['service']}-{description['deployment']}"
        return web.json_response({"instance": instance, "status": "pending"})

    async def _start(self, description: dict) -> None:
        target = self.workdir / f"clone-{description['deployment']}"
        url = description["clone_url"].replace(
            "http://", f"http://{description['user']}:{description['key']}@"
        )
        await git("clone", "-q", url, str(target))
        await git("checkout", "-q", description["commit"], cwd=target)
        await git("lfs", "pull", cwd=target)
        self.clones[description["deployment"]] = target
        report = {"status": "running", "ready_replicas": description["replicas"]}
        await self.report(description["callback_url"], report)

    async def report(self, url: str, report: dict, stamp: int | None = None) -> int:
        body = json.dumps(report).encode()
        stamp = int(time.time()) if stamp is None else stamp
        headers = {
            "Content-Type": "application/json",
            "X-Amphub-Timestamp": str(stamp),
            "X-Amphub-Signature": signature(SECRET, stamp, body),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as resp,
        ):
            self.reports.append((report, resp.status))
            return resp.status


@dataclass
class Setup:
    hub: Hub
    service: StandIn
    work: Path


@contextlib.asynccontextmanager
async def serving(hub: Hub, workdir: Path) -> AsyncIterator[StandIn]:
    """A stand-in service, registered on `hub` as the deploy target `serving`."""
    await git("lfs", "install", "--skip-repo")
    service = StandIn(workdir)
    app = web.Application()
    app.router.add_post("/deploy", service.deploy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/deploy"))
        status, answer = await hub.call(
            "POST", "/api/v1/deploy-targets", json={"name": "serving", "url": url, "secret": SECRET}
        )
        assert status == 201, answer
        yield service
    finally:
        await asyncio.gather(*service.tasks, return_exceptions=True)
        await server.close()


@pytest.fixture
async def setup(hub: Hub, tmp_path: Path) -> AsyncIterator[Setup]:
    async with serving(hub, tmp_path) as service:
        await hub.space_and_model("team", "m1")
        work = tmp_path / "work"
        files = {"weights.bin": os.urandom(MIB), "config.json": '{"layers": 2}'}
        await push(work, files, "weights", clone=hub.remote("team", "m1"))
        yield Setup(hub, service, work)


async def deploy(hub: Hub, user: str = "admin", **body) -> tuple[int, dict]:
    body = {"ref": "master", "target": "serving", "service": "chat", "replicas": 2, **body}
    return await hub.call("POST", "/api/v1/models/team/m1/deployments", user=user, json=body)


async def deployment_state(hub: Hub, deployment_id: int, until: str) -> dict:
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        _, details = await hub.call("GET", "/api/v1/models/team/m1")
        found = {d["id"]: d for d in details["deployments"]}.get(deployment_id)
        if found and found["status"] == until:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deployment {deployment_id} never became {until}: {details}")


async def test_deploy_clones_with_its_key_and_status_reports_reach_the_model(setup: Setup):
    hub, service = setup.hub, setup.service
    status, task = await deploy(hub)
    assert status == 201, task
    assert task["kind"] == "deploy" and task["deployment"]["status"] == "pending"
    done = await wait_task(hub, task["id"])
    assert done["status"] == "succeeded", done
    deployment_id = task["deployment"]["id"]
    assert done["result"] == {
        "deployment": deployment_id,
        "instance": f"chat-{deployment_id}",
        "status": "pending",
    }
    [description] = service.received
    head = (await git("rev-parse", "HEAD", cwd=setup.work)).stdout.strip()
    assert description["commit"] == head and description["ref"] == "master"
    assert description["space"] == "team" and description["model"] == "m1"
    assert description["service"] == "chat" and description["replicas"] == 2
    assert description["user"] == "admin" and description["key"] != hub.admin_key

    running = await deployment_state(hub, deployment_id, "running")
    assert running["ready_replicas"] == 2
    assert running["instance"] == f"chat-{deployment_id}"
    assert running["commit"] == head and running["target"] == "serving"
    clone = service.clones[deployment_id]
    assert (clone / "weights.bin").read_bytes() == (setup.work / "weights.bin").read_bytes()


async def test_the_key_reads_only_its_model_and_dies_with_the_deployment(setup: Setup, tmp_path):
    hub, service = setup.hub, setup.service
    await hub.model("team", "other")
    _, task = await deploy(hub)
    await wait_task(hub, task["id"])
    await deployment_state(hub, task["deployment"]["id"], "running")
    description = service.received[0]
    user, key = description["user"], description["key"]
    as_key = {"Authorization": aiohttp.encode_basic_auth(user, key)}

    def url(model: str) -> str:
        return f"{hub.base}/team/{model}.git".replace("http://", f"http://{user}:{key}@")

    assert (await git("ls-remote", url("m1"))).returncode == 0
    other = await git("ls-remote", url("other"), check=False)
    assert other.returncode != 0
    assert "a transfer token is good only for the model it was issued for" in other.stderr
    clone = service.clones[task["deployment"]["id"]]
    (clone / "x.txt").write_text("not allowed")
    await git("add", "x.txt", cwd=clone)
    await git("commit", "-q", "-m", "x", cwd=clone)
    push = await git("push", "-q", "origin", "HEAD:master", cwd=clone, check=False)
    assert push.returncode != 0 and "good only for moving its own model's files" in push.stderr
    # Anywhere but its model's transfers a token is refused as if no credentials were sent.
    for method, path in (
        ("POST", "/api/v1/me/key"),
        ("PATCH", "/api/v1/models/team/m1"),
        ("GET", "/api/v1/models"),
        ("GET", "/api/v1/spaces"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/models"),
        ("GET", "/api/whoami-v2"),
    ):
        async with hub.session.request(
            method, f"{hub.base}{path}", json={"visibility": "public"}, headers=as_key
        ) as resp:
            assert resp.status == 401, (method, path)
            assert "WWW-Authenticate" in resp.headers, (method, path)
    async with hub.session.get(f"{hub.base}/", headers=as_key, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"].startswith("/-/sign-in")

    status, _ = await hub.call(
        "DELETE", f"/api/v1/models/team/m1/deployments/{task['deployment']['id']}"
    )
    assert status == 204
    gone = await git("ls-remote", url("m1"), check=False)
    assert gone.returncode != 0 and "Authentication failed" in gone.stderr
    _, details = await hub.call("GET", "/api/v1/models/team/m1")
    assert details["deployments"] == []


async def test_the_key_expires_by_itself(tmp_path):
    clock = FakeClock(datetime.now(UTC))
    async with running_hub(tmp_path / "data", clock) as hub, serving(hub, tmp_path) as service:
        await hub.space_and_model("team", "m1")
        _, task = await deploy(hub)
        await wait_task(hub, task["id"])
        await deployment_state(hub, task["deployment"]["id"], "running")
        description = service.received[0]
        url = f"{hub.base}/team/m1.git".replace(
            "http://", f"http://{description['user']}:{description['key']}@"
        )
        assert (await git("ls-remote", url)).returncode == 0
        clock.advance(hours=1, seconds=1)
        expired = await git("ls-remote", url, check=False)
        assert expired.returncode != 0 and "Authentication failed" in expired.stderr


async def test_tampered_replayed_and_stale_reports_are_refused(setup: Setup):
    hub, service = setup.hub, setup.service
    _, task = await deploy(hub)
    await wait_task(hub, task["id"])
    deployment_id = task["deployment"]["id"]
    await deployment_state(hub, deployment_id, "running")
    callback = service.received[0]["callback_url"]

    body = json.dumps({"status": "stopped"}).encode()
    stamp = int(time.time())
    good = {
        "Content-Type": "application/json",
        "X-Amphub-Timestamp": str(stamp),
        "X-Amphub-Signature": signature(SECRET, stamp, body),
    }
    tampered = json.dumps({"status": "failed"}).encode()
    async with hub.session.post(callback, data=tampered, headers=good) as resp:
        assert resp.status == 401
        assert "does not match" in (await resp.json())["error"]["message"]
    async with hub.session.post(callback, data=body, headers=good) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "stopped"
    async with hub.session.post(callback, data=body, headers=good) as resp:
        assert resp.status == 401
        assert "replay" in (await resp.json())["error"]["message"]
    assert await service.report(callback, {"status": "running"}, stamp=stamp - 3600) == 401
    wrong = {**good, "X-Amphub-Signature": signature("guess", stamp, body)}
    async with hub.session.post(callback, data=body, headers=wrong) as resp:
        assert resp.status == 401
    async with hub.session.post(callback, data=body) as resp:
        assert resp.status == 401
    _, details = await hub.call("GET", "/api/v1/models/team/m1")
    assert details["deployments"][0]["status"] == "stopped"
    async with hub.session.post(
        callback.replace(f"/{deployment_id}/", "/999/"), data=body, headers=good
    ) as resp:
        assert resp.status == 404


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the deploy task asks for between attempts, none of them taken for real."""
    asked: list[float] = []

    async def no_wait(delay: float) -> None:
        asked.append(delay)

    monkeypatch.setattr(deploy_task, "sleep", no_wait)
    return asked


async def test_target_failures_are_retried_until_it_accepts(setup: Setup, waits: list[float]):
    hub, service = setup.hub, setup.service
    service.fail_next = [503, 502]
    _, task = await deploy(hub)
    done = await wait_task(hub, task["id"])
    assert done["status"] == "succeeded", done
    assert len(service.received) == 1
    assert service.attempts == 3 and waits == [1, 2]


async def test_a_refusal_is_not_retried_and_fails_the_deployment(setup: Setup, waits: list[float]):
    hub, service = setup.hub, setup.service
    service.fail_next = [409]
    _, task = await deploy(hub)
    done = await wait_task(hub, task["id"])
    assert done["status"] == "failed"
    assert done["message"] == "serving answered 409: no capacity (409)"
    _, details = await hub.call("GET", "/api/v1/models/team/m1")
    failed = {d["id"]: d for d in details["deployments"]}[task["deployment"]["id"]]
    assert failed["status"] == "failed" and "no capacity" in failed["message"]
    assert service.attempts == 1 and waits == []


async def test_retries_end_with_the_targets_last_answer(setup: Setup, waits: list[float]):
    hub, service = setup.hub, setup.service
    service.fail_next = [503, 503, 503, 503]
    _, task = await deploy(hub)
    done = await wait_task(hub, task["id"])
    assert done["status"] == "failed"
    assert done["message"] == "serving answered 503: no capacity (503)"
    assert service.attempts == 4 and waits == [1, 2, 4]


async def test_deploy_requests_are_checked(setup: Setup):
    hub = setup.hub
    await hub.user("reader")
    await hub.call("PUT", "/api/v1/models/team/m1/members/reader", json={"role": "user"})
    assert (await deploy(hub, user="reader"))[0] == 403
    cases = [
        ({"target": "nowhere"}, "no deploy target nowhere; an administrator registers them"),
        ({"service": ""}, "service must be 1 to 100 characters"),
        ({"replicas": 0}, "replicas must be 1 to 1000"),
        ({"params": [1]}, "field 'params' must be dict"),
        ({"ref": "nope"}, "no branch, tag or commit nope"),
    ]
    answers = []
    for change, _ in cases:
        status, answer = await deploy(hub, **change)
        answers.append((status, answer.get("error", answer)))
    # One comparison of the whole table: a case that fails does not hide the others.
    assert answers == [(400, {"code": ANY, "message": message}) for _, message in cases]
    _, details = await hub.call("GET", "/api/v1/models/team/m1")
    assert details["deployments"] == []

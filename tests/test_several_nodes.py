"""A real deployment: two `amphub serve` nodes on PostgreSQL, behind nginx (round robin).

The nodes share the data dir (repositories and LFS store, as a shared file system would)
and one database; `base_url` is nginx's address, as the README deploys it. Where a test
says "one node" and "the other", it talks to each directly; the rest goes through nginx.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from huggingface_hub import hf_hub_download

from tests.conftest import (
    Hub,
    ServerProcess,
    commit,
    git,
    push,
    read_from_outside,
    wait_for_card,
    wait_task,
)
from tests.load_balancer import NOBODY, Nginx
from tests.test_hf_download import hf, hf_home  # noqa: F401  (hf_home: autouse)
from tests.test_lfs import batch, oid_of
from tests.test_search import search
from tests.test_task_nodes import Service, prepare, stand_in

KIB, MIB = 1024, 1024 * 1024
LEASE = 3  # seconds: a killed node's task is taken over 3 to 4 s after its last renewal
FINISHED = ("succeeded", "failed", "canceled")
MAX_GIT_FILE = MIB  # so that a push of one larger file fails at once, a large one is many


@dataclass
class Deployment:
    """The two nodes, a client of each (`a`, `b`) and one through nginx (`lb`)."""

    servers: dict[str, ServerProcess]
    hubs: dict[str, Hub]
    nginx: Nginx
    database: str

    @property
    def repos(self) -> Path:
        return next(iter(self.servers.values())).data / "repos"

    def live(self) -> list[ServerProcess]:
        return [s for s in self.servers.values() if s.proc and s.proc.returncode is None]


@pytest.fixture
async def deployment(
    tmp_path: Path, nginx: Nginx, fresh_database: str
) -> AsyncIterator[Deployment]:
    data = tmp_path / "data"
    settings = {
        "AMPHUB_DATABASE": fresh_database,
        "AMPHUB_BASE_URL": nginx.url,
        "AMPHUB_TASK_LEASE_SECONDS": str(LEASE),
        "AMPHUB_WORKERS": "1",
        "AMPHUB_QUOTA_UNIT": str(64 * KIB),
        "AMPHUB_MAX_GIT_FILE_SIZE": str(MAX_GIT_FILE),
        "AMPHUB_SHUTDOWN_TIMEOUT": "1",
    }
    servers = {name: ServerProcess(data, AMPHUB_NODE=name, **settings) for name in ("a", "b")}
    await git("lfs", "install", "--skip-repo")
    async with aiohttp.ClientSession() as session:
        try:
            await servers["a"].start()  # the first start creates the hub and prints the key
            await servers["b"].start()
            key = servers["a"].key
            lb = nginx.front(servers["a"].port, servers["b"].port)
            hubs = {name: Hub(None, session, key, data, url=s.url) for name, s in servers.items()}
            hubs["lb"] = Hub(None, session, key, data, url=lb)
            yield Deployment(servers, hubs, nginx, fresh_database)
        finally:
            live = [s for s in servers.values() if s.proc and s.proc.returncode is None]
            await asyncio.gather(*(server.stop() for server in live))
            nginx.front(NOBODY)  # no later request reaches a node of this test


def other(node: str) -> str:
    return "b" if node == "a" else "a"


async def head_of(hub: Hub, ref: str = "refs/heads/master") -> str:
    listed = await git("ls-remote", hub.remote("team", "m1"), ref)
    return listed.stdout.split()[0] if listed.stdout else ""


async def sound_clone(hub: Hub, where: Path) -> Path:
    """A fresh clone through `hub`, checked by git fsck (and git lfs fsck)."""
    await git("clone", "-q", hub.remote("team", "m1"), str(where))
    await git("fsck", "--full", "--strict", cwd=where)
    await git("lfs", "fsck", cwd=where)
    return where


def big_files(total: int, prefix: str = "part") -> dict[str, bytes]:
    """Random files of just under the git file limit, `total` bytes in all."""
    size = MAX_GIT_FILE - 4 * KIB
    return {f"{prefix}/{n:03}.dat": os.urandom(size) for n in range(total // size)}


async def pack_being_written(repos: Path) -> Path:
    """The partial pack a push writes into a repository, once there is one."""
    for _ in range(2000):
        found = list(repos.rglob("tmp_pack_*"))
        if found:
            return found[0]
        await asyncio.sleep(0.005)
    raise AssertionError("no push wrote a pack")


async def waiting_for_a_lock(database: str) -> bool:
    """Whether a node waits for an advisory lock (of a repository, here) that another holds."""
    sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    return (await read_from_outside(database, sql))[0][0] > 0


def writer_of(pack: Path, servers: list[ServerProcess]) -> ServerProcess:
    """The node whose process has the partial pack open."""
    for server in servers:
        for fd in Path(f"/proc/{server.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(str(pack)):
                    return server
    raise AssertionError(f"no node holds {pack}")


async def test_a_push_through_one_node_is_cloned_through_the_other_and_nginx(
    deployment: Deployment, tmp_path: Path
):
    a, b, lb = (deployment.hubs[name] for name in ("a", "b", "lb"))
    await a.space_and_model("team", "m1")
    weights, text = os.urandom(3 * MIB), os.urandom(200 * KIB).hex()  # in LFS, in git
    files = {"weights.bin": weights, "data.txt": text}
    head = await push(tmp_path / "work", files, clone=a.remote("team", "m1"))

    for hub, name in ((b, "through-b"), (lb, "through-lb")):
        fresh = await sound_clone(hub, tmp_path / name)
        assert (await git("rev-parse", "HEAD", cwd=fresh)).stdout.strip() == head
        assert (fresh / "weights.bin").read_bytes() == weights
        assert (fresh / "data.txt").read_text() == text
    path = await hf(
        hf_hub_download,
        "team/m1",
        "weights.bin",
        endpoint=lb.base,
        token=lb.admin_key,
        cache_dir=tmp_path / "hf-cache",
    )
    assert Path(path).read_bytes() == weights


async def test_two_pushes_racing_to_one_branch_through_both_nodes_one_wins(
    deployment: Deployment, tmp_path: Path
):
    a, b, lb = (deployment.hubs[name] for name in ("a", "b", "lb"))
    await lb.space_and_model("team", "m1")
    await push(tmp_path / "base", {"README.md": "base\n"}, clone=lb.remote("team", "m1"))
    heads = {}
    for name, hub in (("a", a), ("b", b)):
        await git("clone", "-q", hub.remote("team", "m1"), str(tmp_path / name))
        heads[name] = await commit(tmp_path / name, big_files(4 * MIB, prefix=name), name)
    results = await asyncio.gather(
        *(git("push", "-q", "origin", "HEAD", cwd=tmp_path / name, check=False) for name in "ab")
    )
    won = [name for name, result in zip("ab", results, strict=True) if result.returncode == 0]
    assert len(won) == 1, results
    lost = results["ab".index(other(won[0]))]
    assert "rejected" in lost.stderr, lost.stderr
    assert await head_of(lb) == heads[won[0]]
    fresh = await sound_clone(lb, tmp_path / "fresh")
    assert (await git("rev-parse", "HEAD", cwd=fresh)).stdout.strip() == heads[won[0]]


async def test_a_failed_push_on_one_node_leaves_a_large_push_on_the_other_alone(
    deployment: Deployment, tmp_path: Path
):
    a, b, lb = (deployment.hubs[name] for name in ("a", "b", "lb"))
    await lb.space_and_model("team", "m1")
    await push(tmp_path / "base", {"README.md": "base\n"}, clone=lb.remote("team", "m1"))
    for name, hub in (("a", a), ("b", b)):
        await git("clone", "-q", hub.remote("team", "m1"), str(tmp_path / name))
    await commit(tmp_path / "a", {"huge.dat": os.urandom(2 * MAX_GIT_FILE)}, "too large")
    large = await commit(tmp_path / "b", big_files(8 * MIB), "large")

    pushing = asyncio.ensure_future(git("push", "-q", "origin", "HEAD", cwd=tmp_path / "b"))
    pack = await pack_being_written(deployment.repos)
    # Node b stops while it writes its pack, holding the repository's lock; node a refuses
    # a push meanwhile and removes the partial packs it finds: only its own, as long as
    # it waits for that lock (held across nodes) before it reads the pack.
    node_b = deployment.servers["b"]
    node_b.proc.send_signal(signal.SIGSTOP)
    try:
        assert pack.exists(), "node b wrote its pack before it was stopped: push more"
        refusing = asyncio.ensure_future(
            git("push", "-q", "origin", "HEAD", cwd=tmp_path / "a", check=False)
        )
        while not (refusing.done() or await waiting_for_a_lock(deployment.database)):
            await asyncio.sleep(0.02)
    finally:
        node_b.proc.send_signal(signal.SIGCONT)
    refused = await refusing
    assert refused.returncode != 0 and "larger than" in refused.stderr, refused.stderr
    await pushing
    assert await head_of(lb) == large
    await sound_clone(lb, tmp_path / "fresh")


async def test_an_lfs_upload_batched_on_one_node_is_put_to_the_other(
    deployment: Deployment, tmp_path: Path
):
    a, b, lb = (deployment.hubs[name] for name in ("a", "b", "lb"))
    await lb.space_and_model("team", "m1")
    data = os.urandom(300 * KIB)
    objects = [{"oid": oid_of(data), "size": len(data)}]
    status, answer, _ = await batch(a, "upload", objects)
    assert status == 200, answer
    upload, verify = (answer["objects"][0]["actions"][name] for name in ("upload", "verify"))
    assert upload["href"].startswith(lb.base), upload  # base_url: nginx's
    href = b.base + upload["href"].removeprefix(lb.base)
    async with b.session.put(href, data=data, headers=upload.get("header", {})) as resp:
        assert resp.status == 200, await resp.text()
    href = a.base + verify["href"].removeprefix(lb.base)
    async with a.session.post(href, json=objects[0], headers=verify.get("header", {})) as resp:
        assert resp.status == 200, await resp.text()

    status, answer, _ = await batch(b, "download", objects)
    action = answer["objects"][0]["actions"]["download"]
    href = a.base + action["href"].removeprefix(lb.base)
    async with a.session.get(href, headers=action.get("header", {})) as resp:
        assert (resp.status, await resp.read()) == (200, data)


async def deploy(hub: Hub) -> tuple[int, int]:
    """Queue a deploy of team/m1 through `hub`: (task id, deployment id)."""
    body = {"ref": "master", "target": "serving", "service": "chat", "replicas": 1}
    status, task = await hub.call("POST", "/api/v1/models/team/m1/deployments", json=body)
    assert status == 201, task
    return task["id"], task["deployment"]["id"]


async def posted(service: Service, deployment: int) -> None:
    for _ in range(400):
        if service.posts[deployment]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"deployment {deployment} was never posted")


async def test_a_task_queued_through_one_node_is_run_by_the_other(deployment: Deployment):
    a = deployment.hubs["a"]
    async with stand_in() as (service, url):
        await prepare(a, url)
        # Node a alone, its one worker held by a task of its own...
        await deployment.servers["b"].stop()
        service.hold = True
        held, held_deployment = await deploy(a)
        await posted(service, held_deployment)
        service.hold = False
        # ...so that the task queued through it next is run by node b.
        await deployment.servers["b"].start()
        task_id, _ = await deploy(a)
        done = await wait_task(a, task_id)
        assert (done["status"], done["node"]) == ("succeeded", "b"), done
        service.released.set()
        done = await wait_task(a, held)
        assert (done["status"], done["node"]) == ("succeeded", "a"), done


async def test_a_push_cut_by_kill_9_of_its_node_succeeds_when_retried_through_nginx(
    deployment: Deployment, tmp_path: Path
):
    lb = deployment.hubs["lb"]
    await lb.space_and_model("team", "m1")
    await push(tmp_path / "work", {"README.md": "base\n"}, clone=lb.remote("team", "m1"))
    large = await commit(tmp_path / "work", big_files(8 * MIB), "large")

    pushing = asyncio.ensure_future(
        git("push", "-q", "origin", "HEAD", cwd=tmp_path / "work", check=False)
    )
    pack = await pack_being_written(deployment.repos)
    await writer_of(pack, deployment.live()).kill()
    assert (await pushing).returncode != 0
    await git("push", "-q", "origin", "HEAD", cwd=tmp_path / "work")
    assert await head_of(lb) == large
    await sound_clone(lb, tmp_path / "fresh")


async def test_a_task_of_a_killed_node_is_finished_by_the_survivor(deployment: Deployment):
    lb = deployment.hubs["lb"]
    async with stand_in() as (service, url):
        await prepare(lb, url)
        service.hold = True
        task_id, held = await deploy(lb)
        await posted(service, held)
        _, task = await lb.call("GET", f"/api/v1/tasks/{task_id}")
        assert task["status"] == "running", task
        await deployment.servers[task["node"]].kill()
        done = await wait_task(lb, task_id)  # nginx passes over the dead node
        assert (done["status"], done["node"]) == ("succeeded", other(task["node"])), done
        assert service.posts[held] == 2


CARD = """---
license: mit
tags: [several-nodes]
---
# A model pushed through node a
"""


async def test_search_on_one_node_sees_a_card_changed_through_the_other_at_once(
    deployment: Deployment, tmp_path: Path
):
    a, b = deployment.hubs["a"], deployment.hubs["b"]
    await a.space_and_model("team", "m1")
    await a.model("team", "m2")
    assert (await search(b, license="mit"))["models"] == []  # node b's index is warm
    head = await push(tmp_path / "work", {"README.md": CARD}, "card", clone=a.remote("team", "m1"))
    await wait_for_card(a, "team", "m1", head)
    found = await search(b, license="mit")
    assert [model["id"] for model in found["models"]] == ["m1"], found


async def test_two_lfs_batches_through_two_nodes_cannot_overfill_a_space(
    deployment: Deployment,
):
    a, b = deployment.hubs["a"], deployment.hubs["b"]
    for round in range(4):
        space = f"s{round}"
        await a.space(space, quota=64 * KIB)
        await a.model(space, "m1")
        asked = [{"oid": oid_of(os.urandom(8)), "size": 40 * KIB} for _ in "ab"]
        answers = await asyncio.gather(
            *(batch_in(hub, space, [objects]) for hub, objects in zip((a, b), asked, strict=True))
        )
        granted = ["upload" in str(answer.get("objects")) for answer in answers]
        assert sorted(granted) == [False, True], answers
        refused = answers[granted.index(False)]
        assert f"space {space} is over its quota" in str(refused), refused
    reserved = await read_from_outside(deployment.database, "SELECT count(*) FROM reservations")
    assert reserved == [(4,)]


async def batch_in(hub: Hub, space: str, objects: list[dict]) -> dict:
    url = f"{hub.base}/{space}/m1.git/info/lfs/objects/batch"
    body = {"operation": "upload", "transfers": ["basic"], "objects": objects}
    headers = {
        "Accept": "application/vnd.git-lfs+json",
        "Content-Type": "application/vnd.git-lfs+json",
        "Authorization": aiohttp.encode_basic_auth("admin", hub.admin_key),
    }
    async with hub.session.post(url, json=body, headers=headers) as resp:
        return await resp.json(content_type=None)

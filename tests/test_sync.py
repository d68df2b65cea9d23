"""Sync of models to a peer amphub in another zone: two real servers, real git and git-lfs."""

from __future__ import annotations

import asyncio
import filecmp
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from amphub import db
from amphub.http import keys
from tests.conftest import (
    FakeClock,
    Hub,
    free_port,
    git,
    push,
    read_until,
    start_hub,
    start_server,
    wait_task,
)

MIB = 1024 * 1024


@dataclass
class Zones:
    """A source hub with a zone `eu` registered for a peer hub."""

    source: Hub
    peer: Hub


async def register_zone(source: Hub, peer: Hub, key: str, name: str = "eu") -> None:
    body = {"name": name, "url": peer.base, "user": "syncer", "key": key}
    status, answer = await source.call("POST", "/api/v1/zones", json=body)
    assert status == 201, answer


@pytest.fixture
async def zones(hub: Hub, tmp_path: Path) -> AsyncIterator[Zones]:
    await git("lfs", "install", "--skip-repo")
    server, key = await start_hub(tmp_path / "peer", quota_unit=MIB)
    async with aiohttp.ClientSession() as session:
        peer = Hub(server, session, key, tmp_path / "peer")
        await peer.user("syncer", creator=True)
        await register_zone(hub, peer, peer.keys["syncer"])
        await hub.space_and_model("team", "m1")
        yield Zones(hub, peer)
    await server.close()


async def sync(hub: Hub, ref: str, zone: str = "eu", user: str = "admin") -> dict:
    status, task = await hub.call(
        "POST", "/api/v1/models/team/m1/syncs", user=user, json={"ref": ref, "zone": zone}
    )
    assert status == 201, task
    assert task["kind"] == "sync"
    done = await wait_task(hub, task["id"])
    return done


async def remote_ref(hub: Hub, ref: str, user: str = "admin") -> str | None:
    out = (await git("ls-remote", hub.remote("team", "m1", user), ref)).stdout.split()
    return out[0] if out else None


def same_files(left: Path, right: Path) -> None:
    compare = filecmp.dircmp(left, right, ignore=[".git"])
    pending = [compare]
    while pending:
        current = pending.pop()
        assert not current.left_only and not current.right_only, current.report()
        _, mismatch, errors = filecmp.cmpfiles(
            current.left, current.right, current.common_files, shallow=False
        )
        assert not mismatch and not errors, (mismatch, errors)
        pending.extend(current.subdirs.values())


async def clone_at(hub: Hub, tmp_path: Path, name: str, ref: str, user: str = "admin") -> Path:
    target = tmp_path / name
    await git("clone", "-q", hub.remote("team", "m1", user), str(target))
    await git("checkout", "-q", ref, cwd=target)
    await git("lfs", "pull", cwd=target)
    return target


async def test_sync_a_branch_a_tag_and_a_commit_then_clone_from_the_peer(zones, tmp_path):
    source, peer = zones.source, zones.peer
    work = tmp_path / "work"
    first = await push(
        work,
        {"weights.bin": os.urandom(3 * MIB), "sub/tok.bin": os.urandom(MIB), "config.json": b"{}"},
        "first",
        clone=source.remote("team", "m1"),
    )
    await git("tag", "-a", "v1", "-m", "release 1", cwd=work)
    await git("push", "-q", "origin", "v1", cwd=work)
    second = await push(
        work, {"weights.bin": os.urandom(2 * MIB)}, "second", clone=source.remote("team", "m1")
    )

    done = await sync(source, "master")
    assert done["status"] == "succeeded", done
    assert done["result"]["lfs_objects_sent"] == 2  # the LFS files of this commit only
    assert await remote_ref(peer, "refs/heads/master", "syncer") == second
    # The peer records the push before it sends the report its client hangs up after.
    pushes = await db.list_pushes(peer.server.app[keys.HUB].db, "team", "m1")
    assert [(p.ref, p.new) for p in pushes] == [("refs/heads/master", second)]

    done = await sync(source, "v1")
    assert done["status"] == "succeeded", done
    tag_object = (await git("rev-parse", "v1", cwd=work)).stdout.strip()
    assert await remote_ref(peer, "refs/tags/v1", "syncer") == tag_object
    assert done["result"]["lfs_objects_sent"] == 1  # the first weights; the tokenizer is there

    done = await sync(source, first)
    assert done["status"] == "succeeded", done
    assert done["result"]["ref"] == f"refs/tags/sync-{first[:12]}"
    assert await remote_ref(peer, f"refs/tags/sync-{first[:12]}", "syncer") == first

    for ref in ("master", "v1"):
        mine = await clone_at(source, tmp_path, f"mine-{ref}", ref)
        theirs = await clone_at(peer, tmp_path, f"theirs-{ref}", ref, "syncer")
        same_files(mine, theirs)
        assert (theirs / "weights.bin").stat().st_size in (2 * MIB, 3 * MIB)

    _, details = await source.call("GET", "/api/v1/models/team/m1")
    replicas = {r["ref"]: r for r in details["replicas"]}
    assert set(replicas) == {"master", "v1", first}
    assert replicas["master"] == {
        "zone": "eu",
        "ref": "master",
        "commit": second,
        "synced_at": replicas["master"]["synced_at"],
        "behind": False,
    }
    await push(work, {"notes.txt": b"more"}, "third", clone=source.remote("team", "m1"))
    _, details = await source.call("GET", "/api/v1/models/team/m1")
    behind = {r["ref"]: r["behind"] for r in details["replicas"]}
    assert behind == {"master": True, "v1": False, first: False}


async def test_second_sync_sends_nothing_and_a_new_commit_sends_only_itself(zones, tmp_path):
    source, peer = zones.source, zones.peer
    work = tmp_path / "work"
    files = {f"w{i}.bin": os.urandom(MIB) for i in range(4)}
    await push(work, files, "weights", clone=source.remote("team", "m1"))
    first = await sync(source, "master")
    assert first["status"] == "succeeded", first
    assert first["result"]["lfs_objects_sent"] == 4
    assert first["result"]["lfs_bytes_sent"] == 4 * MIB

    again = await sync(source, "master")
    assert again["status"] == "succeeded", again
    assert again["result"]["lfs_objects_sent"] == 0
    assert again["result"]["lfs_bytes_sent"] == 0
    assert again["result"]["git_objects_sent"] == 0

    head = await push(
        work, {"w9.bin": os.urandom(MIB)}, "one more", clone=source.remote("team", "m1")
    )
    third = await sync(source, "master")
    assert third["status"] == "succeeded", third
    assert third["result"]["lfs_objects_sent"] == 1
    assert third["result"]["lfs_bytes_sent"] == MIB
    assert 0 < third["result"]["git_objects_sent"] <= 3  # the commit, its tree, the pointer
    assert await remote_ref(peer, "refs/heads/master", "syncer") == head


async def test_syncs_of_one_ref_started_together_all_succeed(zones, tmp_path):
    source, peer = zones.source, zones.peer
    work = tmp_path / "work"
    files = {f"w{i}.bin": os.urandom(MIB) for i in range(3)}
    head = await push(work, files, "weights", clone=source.remote("team", "m1"))
    done = await asyncio.gather(*(sync(source, "master") for _ in range(4)))
    assert [task["status"] for task in done] == ["succeeded"] * 4, [t.get("message") for t in done]
    assert sum(task["result"]["lfs_objects_sent"] for task in done) >= 3
    assert await remote_ref(peer, "refs/heads/master", "syncer") == head


async def test_wrong_key_ends_the_task_with_the_peers_message(zones, tmp_path):
    source, peer = zones.source, zones.peer
    await register_zone(source, peer, "not-the-key", name="bad")
    await push(
        tmp_path / "work", {"w.bin": os.urandom(1000)}, "w", clone=source.remote("team", "m1")
    )
    done = await sync(source, "master", zone="bad")
    assert done["status"] == "failed"
    assert done["message"] == "zone bad refused: authentication failed: wrong user name or key"
    assert (await peer.call("GET", "/api/v1/models/team/m1"))[0] == 404


async def test_peer_quota_ends_the_task_and_the_ref_is_not_moved(zones, tmp_path):
    source, peer = zones.source, zones.peer
    # The space exists on the peer already, with less room than the model needs.
    await peer.space("team", owner="syncer", quota=MIB)
    await peer.model("team", "m1", owner="syncer")
    before = await remote_ref(peer, "refs/heads/master", "syncer")
    await push(
        tmp_path / "work",
        {"big.bin": os.urandom(2 * MIB)},
        "big",
        clone=source.remote("team", "m1"),
    )
    done = await sync(source, "master")
    assert done["status"] == "failed", done
    assert done["message"].startswith("zone eu refused: ")
    assert "quota" in done["message"]
    assert await remote_ref(peer, "refs/heads/master", "syncer") == before


async def test_only_writers_may_sync_and_the_zone_must_exist(zones, tmp_path):
    source = zones.source
    await source.user("reader")
    await source.call("PUT", "/api/v1/models/team/m1/members/reader", json={"role": "user"})
    status, answer = await source.call(
        "POST", "/api/v1/models/team/m1/syncs", user="reader", json={"ref": "master", "zone": "eu"}
    )
    assert status == 403, answer
    status, answer = await source.call(
        "POST", "/api/v1/models/team/m1/syncs", json={"ref": "master", "zone": "mars"}
    )
    assert (status, answer["error"]["message"]) == (
        400,
        "no zone mars; an administrator registers zones",
    )
    status, answer = await source.call(
        "POST", "/api/v1/models/team/m1/syncs", json={"ref": "nope", "zone": "eu"}
    )
    assert status == 400 and "nope" in answer["error"]["message"]
    _, tasks = await source.call("GET", "/api/v1/tasks?kind=sync")
    assert tasks["tasks"] == []


class HoldingProxy:
    """A TCP proxy to the peer that can hold, or cut once, the upload stream after some bytes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.uploaded = 0
        self.hold_after: int | None = None
        self.cut_after: int | None = None
        self.released = asyncio.Event()
        self.released.set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _connect(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        ends = (writer, up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer, ends, upload=True),
            self._pipe(up_reader, writer, ends, upload=False),
            return_exceptions=True,
        )

    async def _pipe(self, source, sink, ends, *, upload: bool) -> None:
        try:
            while data := await source.read(64 * 1024):
                if upload:
                    if self.hold_after is not None and self.uploaded >= self.hold_after:
                        await self.released.wait()
                    if self.cut_after is not None and self.uploaded >= self.cut_after:
                        self.cut_after = None
                        for end in ends:
                            end.transport.abort()
                        return
                    self.uploaded += len(data)
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()


async def test_sync_killed_midway_resumes_after_restart_and_never_points_at_missing_objects(
    tmp_path,
):
    await git("lfs", "install", "--skip-repo")
    peer_server, peer_key = await start_hub(tmp_path / "peer")
    proxy = HoldingProxy(peer_server.port)
    proxy_url = await proxy.start()
    data, port = tmp_path / "source", free_port()
    proc = await start_server(data, port)
    lines = await read_until(proc, "listening")
    key = next(line.split(": ")[1] for line in lines if line.startswith("administrator key"))
    try:
        async with aiohttp.ClientSession() as session:
            peer = Hub(peer_server, session, peer_key, tmp_path / "peer")
            source = Hub(None, session, key, data, url=f"http://127.0.0.1:{port}")
            await peer.user("syncer", creator=True)
            status, _ = await source.call(
                "POST",
                "/api/v1/zones",
                json={"name": "eu", "url": proxy_url, "user": "syncer", "key": peer.keys["syncer"]},
            )
            assert status == 201
            await source.space_and_model("team", "m1")
            files = {f"w{i}.bin": os.urandom(4 * MIB) for i in range(4)}
            head = await push(
                tmp_path / "work", files, "weights", clone=source.remote("team", "m1")
            )

            proxy.hold_after = 6 * MIB  # one object through, the second half sent
            proxy.released.clear()
            status, task = await source.call(
                "POST", "/api/v1/models/team/m1/syncs", json={"ref": "master", "zone": "eu"}
            )
            assert status == 201, task
            while proxy.uploaded < proxy.hold_after:
                await asyncio.sleep(0.05)
            held = await wait_task(source, task["id"], until=("running",))
            assert "LFS 1/4 objects" in held["message"], held
            assert await remote_ref(peer, "refs/heads/master", "syncer") != head

            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            proxy.released.set()
            proc = await start_server(data, port)
            await read_until(proc, "listening")
            done = await wait_task(source, task["id"])
            assert done["status"] == "succeeded", done
            assert done["result"]["lfs_objects_sent"] == 3  # the first one had arrived
            assert await remote_ref(peer, "refs/heads/master", "syncer") == head
            theirs = await clone_at(peer, tmp_path, "theirs", "master", "syncer")
            for name, content in files.items():
                assert (theirs / name).read_bytes() == content
            assert list((tmp_path / "peer").rglob("*.part")) == []
    finally:
        proc.terminate()
        await proc.wait()
        proxy.server.close()
        await peer_server.close()


async def test_connection_cut_midway_is_retried_without_resending_what_arrived(zones, tmp_path):
    source, peer = zones.source, zones.peer
    proxy = HoldingProxy(peer.server.port)
    url = await proxy.start()
    body = {"name": "flaky", "url": url, "user": "syncer", "key": peer.keys["syncer"]}
    assert (await source.call("POST", "/api/v1/zones", json=body))[0] == 201
    files = {f"w{i}.bin": os.urandom(2 * MIB) for i in range(3)}
    head = await push(tmp_path / "work", files, "weights", clone=source.remote("team", "m1"))
    proxy.cut_after = 3 * MIB  # in the middle of the second object
    done = await sync(source, "master", zone="flaky")
    assert done["status"] == "succeeded", done
    assert done["result"]["lfs_objects_sent"] == 2
    assert proxy.uploaded < 8 * MIB  # 6 MiB of objects, plus the half sent twice
    assert await remote_ref(peer, "refs/heads/master", "syncer") == head
    proxy.server.close()


async def test_a_canceled_sync_stops_and_moves_no_ref(zones, tmp_path):
    source, peer = zones.source, zones.peer
    proxy = HoldingProxy(peer.server.port)
    url = await proxy.start()
    body = {"name": "slow", "url": url, "user": "syncer", "key": peer.keys["syncer"]}
    assert (await source.call("POST", "/api/v1/zones", json=body))[0] == 201
    files = {f"w{i}.bin": os.urandom(2 * MIB) for i in range(3)}
    await push(tmp_path / "work", files, "weights", clone=source.remote("team", "m1"))
    proxy.hold_after = 3 * MIB
    proxy.released.clear()
    status, task = await source.call(
        "POST", "/api/v1/models/team/m1/syncs", json={"ref": "master", "zone": "slow"}
    )
    assert status == 201, task
    while proxy.uploaded < proxy.hold_after:
        await asyncio.sleep(0.05)
    assert (await source.call("POST", f"/api/v1/tasks/{task['id']}/cancel"))[0] == 200
    proxy.released.set()
    done = await wait_task(source, task["id"])
    assert done["status"] == "canceled", done
    assert (await peer.call("GET", "/api/v1/models/team/m1", user="syncer"))[0] == 200
    assert await remote_ref(peer, "refs/heads/master", "syncer") != await remote_ref(
        source, "refs/heads/master"
    )
    _, details = await source.call("GET", "/api/v1/models/team/m1")
    assert details["replicas"] == []
    proxy.server.close()


async def test_a_peer_space_the_key_may_not_use_ends_the_task(zones, tmp_path):
    source, peer = zones.source, zones.peer
    # The peer's space team belongs to its admin; to the zone's user it is not there, and
    # its id is taken.
    await peer.space("team")
    await push(
        tmp_path / "work", {"w.bin": os.urandom(1000)}, "w", clone=source.remote("team", "m1")
    )
    done = await sync(source, "master")
    assert done["status"] == "failed", done
    assert done["message"] == "zone eu refused: space team exists already"
    assert (await peer.call("GET", "/api/v1/models/team/m1"))[0] == 404


async def test_a_peer_space_past_its_expiry_ends_the_task_and_moves_no_ref(hub, tmp_path):
    await git("lfs", "install", "--skip-repo")
    clock = FakeClock()
    server, key = await start_hub(tmp_path / "peer", clock)
    try:
        async with aiohttp.ClientSession() as session:
            peer = Hub(server, session, key, tmp_path / "peer")
            await peer.user("syncer", creator=True)
            await register_zone(hub, peer, peer.keys["syncer"])
            await peer.space("team", owner="syncer")  # monthly: read-only after a month
            await peer.model("team", "m1", owner="syncer")
            before = await remote_ref(peer, "refs/heads/master", "syncer")
            await hub.space_and_model("team", "m1")
            await push(
                tmp_path / "work", {"w.bin": os.urandom(1000)}, "w", clone=hub.remote("team", "m1")
            )
            clock.advance(days=32)
            done = await sync(hub, "master")
            assert done["status"] == "failed", done
            assert done["message"] == (
                "zone eu refused: space team expired on 2026-02-15 12:00 UTC and is read-only"
                " until 2026-02-22 12:00 UTC; renew it to push and upload again"
            )
            assert await remote_ref(peer, "refs/heads/master", "syncer") == before
    finally:
        await server.close()

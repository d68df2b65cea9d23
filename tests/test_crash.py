"""Kill -9 at random moments of writes; after each restart the client's retry completes,
the repository is whole, usage is what is stored and `amphub doctor` finds nothing.

Marked `crash`: `pytest -m crash` runs it alone, with 30 kills (about two minutes); the
default run, which CI runs, kills 12 times to keep the suite's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from huggingface_hub import HfApi

from amphub.storage.repos import PACK_CACHE_DIR, is_scratch
from tests.conftest import (
    Hub,
    ServerProcess,
    commit,
    git,
    start_hub,
    wait_task,
)
from tests.test_doctor import doctor
from tests.test_hf_download import hf, hf_home  # noqa: F401  (hf_home: autouse)
from tests.test_sync import register_zone

pytestmark = pytest.mark.crash
# Kills of each of the six kinds of write: run alone (`-m crash`), and in the default run.
KILLS_ALONE, KILLS_IN_SUITE = 5, 2
MIB = 1024 * 1024


async def crash_during(
    server: ServerProcess, write: Callable[[], Awaitable[object]], rng: random.Random
) -> None:
    """Start `write`, kill the server at a random moment, restart it, and retry `write`.

    The server is back before the interrupted client gives up, as under a supervisor: a
    client that retries (huggingface_hub, hf_xet) then ends soon instead of backing off
    against a closed port.
    """
    started = asyncio.ensure_future(write())
    await asyncio.sleep(rng.uniform(0.02, 0.7))
    await server.kill()
    await server.start()
    with contextlib.suppress(Exception):  # the client saw the server go, or finished first
        await asyncio.wait_for(started, 120)
    await asyncio.wait_for(write(), 120)


async def every_task_finished(hub: Hub, kind: str) -> None:
    """Wait for the tasks of a kind (the interrupted ones, queued again); all succeeded."""
    _, listed = await hub.call("GET", f"/api/v1/tasks?kind={kind}&model=team/m1")
    for task in listed["tasks"]:
        done = await wait_task(hub, task["id"])
        assert done["status"] == "succeeded", done


async def check(hub: Hub, tmp_path: Path, model: str, n: int) -> None:
    """A fresh clone is whole, usage is what is stored, and the doctor finds nothing."""
    clone = tmp_path / f"check-{model}-{n}"
    await git("clone", "-q", hub.remote("team", model), str(clone))
    await git("fsck", "--strict", cwd=clone)
    await git("lfs", "fsck", cwd=clone)
    status, space = await hub.call("GET", "/api/v1/spaces/team")
    assert status == 200, space
    assert space["used"] == stored_bytes(hub.data_dir), (space["used"], model, n)
    code, out = await doctor(hub)
    assert code == 0, out


def stored_bytes(data: Path) -> int:
    """What the space's repositories and the LFS objects take on disk, counted here."""
    total = 0
    for repo in (data / "repos" / "team").glob("*.git"):
        for folder, subfolders, files in os.walk(repo):
            subfolders[:] = [s for s in subfolders if s not in (PACK_CACHE_DIR, "xet")]
            total += sum(
                os.path.getsize(os.path.join(folder, f)) for f in files if not is_scratch(f)
            )
    objects = data / "lfs" / "objects"
    return total + sum(path.stat().st_size for path in objects.glob("*/*/*") if path.is_file())


async def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path, pytestconfig):
    kills_each = KILLS_ALONE if pytestconfig.option.markexpr == "crash" else KILLS_IN_SUITE
    await git("lfs", "install", "--skip-repo")
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    print(f"random seed of this run: {rng.getstate()[1][0]}")
    server = ServerProcess(tmp_path / "data")
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            hub = Hub(None, session, server.key, server.data, url=server.url)
            await hub.space_and_model("team", "m1")
            work = tmp_path / "w"
            await git("clone", "-q", hub.remote("team", "m1"), str(work))

            async def push() -> None:
                await git("push", "-q", "origin", "HEAD", cwd=work)

            for n in range(kills_each):  # a push of many commits
                for i in range(60):
                    await commit(work, {f"c/{n}.txt": f"{n} {i}\n"}, f"commit {n}.{i}")
                await crash_during(server, push, rng)
                await check(hub, tmp_path, "m1", n)

            for n in range(kills_each):  # an LFS push
                files = {f"w/{n}-{i}.bin": os.urandom(2 * MIB) for i in range(3)}
                await commit(work, files, f"weights {n}")
                await crash_during(server, push, rng)
                await check(hub, tmp_path, "m1", 100 + n)

            for n in range(kills_each):  # a model's creation

                async def create(model: str = f"new{n}") -> None:
                    status, body = await hub.call(
                        "POST", "/api/v1/spaces/team/models", json={"id": model}
                    )
                    assert status in (201, 409), body

                await crash_during(server, create, rng)
                await check(hub, tmp_path, f"new{n}", n)

            for n in range(kills_each):  # a scan: queued work is done after a restart

                async def scan() -> None:
                    status, task = await hub.call(
                        "POST", "/api/v1/models/team/m1/scans", json={"ref": "master"}
                    )
                    assert status == 201, task
                    done = await wait_task(hub, task["id"])
                    assert done["status"] == "succeeded", done
                    await every_task_finished(hub, "scan")

                await crash_during(server, scan, rng)
                await check(hub, tmp_path, "m1", 200 + n)

            peer_server, peer_key = await start_hub(tmp_path / "peer")
            try:
                peer = Hub(peer_server, session, peer_key, tmp_path / "peer")
                await peer.user("syncer", creator=True)
                await register_zone(hub, peer, peer.keys["syncer"])
                for n in range(kills_each):  # a sync to another zone: resumed after a restart
                    await commit(work, {f"s/{n}.bin": os.urandom(2 * MIB)}, f"to sync {n}")
                    await push()

                    async def sync() -> None:
                        # The retry is a new sync beside the interrupted one, which the
                        # restart queued again: both must succeed.
                        status, task = await hub.call(
                            "POST",
                            "/api/v1/models/team/m1/syncs",
                            json={"ref": "master", "zone": "eu"},
                        )
                        assert status == 201, task
                        done = await wait_task(hub, task["id"])
                        assert done["status"] == "succeeded", done
                        await every_task_finished(hub, "sync")

                    await crash_during(server, sync, rng)
                    await check(hub, tmp_path, "m1", 300 + n)
                    theirs = tmp_path / f"theirs-{n}"
                    await git("clone", "-q", peer.remote("team", "m1", "syncer"), str(theirs))
                    await git("fsck", "--strict", cwd=theirs)
                    await git("lfs", "fsck", cwd=theirs)
            finally:
                await peer_server.close()

            api = HfApi(endpoint=hub.base, token=hub.admin_key)
            await hf(api.create_repo, "team/hf1")
            for n in range(kills_each):  # a huggingface_hub upload
                folder = tmp_path / f"hf-{n}"
                folder.mkdir()
                for i in range(3):
                    (folder / f"{i}.safetensors").write_bytes(os.urandom(2 * MIB))

                async def upload(folder: Path = folder) -> None:
                    await hf(api.upload_folder, repo_id="team/hf1", folder_path=folder)

                await crash_during(server, upload, rng)
                await check(hub, tmp_path, "hf1", n)
    finally:
        await server.stop()

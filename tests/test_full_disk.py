"""A full disk, on a small real file system: sentences and 507s, never a 500 or a lost clone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, push, running_hub

DISK_FULL = "the server's disk is full"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs (mounting needs root: the CI machine runs the suite as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"this machine cannot mount a small file system: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the file system under `folder`."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for piece in (1024 * 1024, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * piece)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_answers_507_with_a_sentence_and_clones_still_work(small_disk, tmp_path):
    await git("lfs", "install", "--skip-repo")
    async with running_hub(small_disk / "data") as hub:
        await hub.space_and_model("team", "m1")
        work = tmp_path / "w"
        await push(work, {"a.txt": "before\n"}, clone=hub.remote("team", "m1"))
        filler = fill(small_disk)

        status, body = await hub.call("POST", "/api/v1/spaces/team/models", json={"id": "m2"})
        assert status == 507 and DISK_FULL in body["error"]["message"], body
        oid = "ab" * 32
        status, body = await hub.call(
            "POST",
            "/team/m1.git/info/lfs/objects/batch",
            json={"operation": "upload", "objects": [{"oid": oid, "size": 1024 * 1024}]},
            headers={"Accept": "application/vnd.git-lfs+json"},
        )
        assert status == 507 and DISK_FULL in body, body
        (work / "big.txt").write_bytes(os.urandom(300 * 1024).hex().encode())
        await git("add", "big.txt", cwd=work)
        await git("commit", "-qm", "big", cwd=work)
        pushed = await git("push", "-q", "origin", "HEAD", cwd=work, check=False)
        # The sentence when the pack fills the disk; git shows only the status when the
        # body cannot even be received (smart HTTP prints no body of a failed POST).
        assert pushed.returncode != 0, pushed.stderr
        assert DISK_FULL in pushed.stderr or "HTTP 507" in pushed.stderr, pushed.stderr
        # A clone the cache has not seen: the cache cannot be written, the clone goes on.
        await git("clone", "-q", hub.remote("team", "m1"), str(tmp_path / "copy"))
        assert (tmp_path / "copy" / "a.txt").read_text() == "before\n"

        filler.unlink()
        await hub.model("team", "m2")
        await git("push", "-q", "origin", "HEAD", cwd=work)

"""`amphub backup` while a server takes pushes, LFS uploads and new models; `amphub restore`.

The backup runs as a process of its own beside the in-process server, as it would beside
`amphub serve`. BACKUP_WRITE_SECONDS=30 runs the issue's 30 seconds of writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

from amphub.storage.repos import model_repositories, push_leftovers
from tests.conftest import git, push, running_hub
from tests.test_cli import amphub, amphub_process

WRITE_SECONDS = float(os.environ.get("BACKUP_WRITE_SECONDS", "8"))
KIB = 1024
DELETED = "deleted"


def rows(db_path: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql).fetchall()


async def write_until(deadline: float, step, acknowledged: list[tuple[str, str]]) -> None:
    """Run `step(i)` until the deadline, noting the (model, commit or DELETED) it returns."""
    loop = asyncio.get_running_loop()
    i = 0
    while loop.time() < deadline:
        acknowledged += await step(i)
        i += 1


async def test_a_backup_taken_during_writes_restores_clean(tmp_path, capsys, caplog):
    await git("lfs", "install", "--skip-repo")
    data, copy, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    acknowledged: list[tuple[str, str]] = []
    async with running_hub(data) as hub:
        await hub.space_and_model("team", "m0")
        await hub.model("team", "m1")

        def pushes_to(model: str):
            async def step(i: int) -> list[tuple[str, str]]:
                files = {f"weights/w{i}.bin": os.urandom(64 * KIB * (1 + i % 8)), "log.txt": f"{i}"}
                work = tmp_path / f"work-{model}"
                url = hub.remote("team", model)
                return [(model, await push(work, files, f"step {i}", clone=url))]

            return step

        async def new_model(i: int) -> list[tuple[str, str]]:
            """A new model with an LFS file; every other step deletes one made before."""
            model = f"new{i}"
            await hub.model("team", model)
            work = tmp_path / f"work-{model}"
            files = {"model.safetensors": os.urandom(32 * KIB)}
            done = [(model, await push(work, files, "first", clone=hub.remote("team", model)))]
            if i % 2:
                status, _ = await hub.call("DELETE", f"/api/v1/models/team/new{i - 1}")
                assert status == 204
                done.append((f"new{i - 1}", DELETED))
            return done

        deadline = asyncio.get_running_loop().time() + WRITE_SECONDS
        steps = (pushes_to("m0"), pushes_to("m1"), new_model)
        writers = asyncio.gather(*(write_until(deadline, s, acknowledged) for s in steps))
        await asyncio.sleep(WRITE_SECONDS / 3)
        before = list(acknowledged)
        made = await amphub_process("backup", str(copy), "--data", str(data), cwd=tmp_path)
        during = len(acknowledged) - len(before)
        await writers
        admin_key = hub.admin_key
    assert made.returncode == 0, made.stderr
    assert during > 0, "no write was acknowledged while the backup ran"
    assert "hard-linked" in made.stdout, made.stdout

    back = amphub(capsys, "restore", str(copy), "--data", str(restored))
    assert back.returncode == 0, back.stderr
    doctor = await amphub_process("doctor", "--data", str(restored), cwd=tmp_path)
    assert (doctor.returncode, doctor.stdout) == (0, "nothing is wrong\n")
    db_path = restored / "amphub.db"
    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]
    models = {model for _, model in rows(db_path, "SELECT space_id, id FROM models")}
    ever_deleted = {model for model, commit in acknowledged if commit == DELETED}
    assert {model for model, _ in before} - ever_deleted <= models
    assert not {model for model, commit in before if commit == DELETED} & models
    assert set(model_repositories(restored / "repos")) == {("team", m) for m in models}
    for _, model in model_repositories(restored / "repos"):
        assert push_leftovers(restored / "repos" / "team" / f"{model}.git") == []
    stored = {p.name for p in (restored / "lfs" / "objects").rglob("*") if p.is_file()}
    assert stored == {oid for (oid,) in rows(db_path, "SELECT oid FROM lfs_objects")}

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="amphub"):
        async with running_hub(restored) as hub:
            hub.admin_key = admin_key
            assert [r.message for r in caplog.records if "repair" in r.message] == []
            for model in sorted(models):
                clone = tmp_path / "clones" / model
                await git("clone", "-q", hub.remote("team", model), str(clone))
                await git("fsck", "--full", "--strict", cwd=clone)
                await git("lfs", "fsck", cwd=clone)
                for commit in [c for m, c in before if m == model]:
                    await git("merge-base", "--is-ancestor", commit, "HEAD", cwd=clone)


async def test_backup_and_restore_go_only_into_empty_folders(tmp_path, capsys):
    data, copy, taken = tmp_path / "data", tmp_path / "backup", tmp_path / "taken"
    async with running_hub(data) as hub:
        await hub.space_and_model("team", "m0")
    copy.mkdir()
    (copy / "notes.txt").write_text("mine")
    refused = amphub(capsys, "backup", str(copy), "--data", str(data))
    assert (refused.returncode, refused.stderr) == (
        1,
        f"amphub: {copy} is not empty: a backup goes into a new or empty folder\n",
    )
    assert amphub(capsys, "backup", str(taken), "--data", str(data)).returncode == 0

    unfinished = amphub(capsys, "restore", str(copy), "--data", str(tmp_path / "new"))
    assert (unfinished.returncode, unfinished.stderr) == (
        1,
        f"amphub: {copy} is not a finished amphub backup (it has no amphub-backup.txt)\n",
    )
    into_data = amphub(capsys, "restore", str(taken), "--data", str(data))
    assert (into_data.returncode, into_data.stderr) == (
        1,
        f"amphub: {data} is not empty: a backup is restored into a new or empty data dir\n",
    )
    assert not (tmp_path / "new").exists()


async def test_a_backup_of_what_a_crash_left_restores_with_nothing_to_repair(
    tmp_path, capsys, caplog
):
    data, copy, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    async with running_hub(data) as hub:
        await hub.space_and_model("team", "m0")
        for model in ("half-made", "half-deleted"):
            await hub.model("team", model)
        head = await push(tmp_path / "w", {"a.txt": "a"}, clone=hub.remote("team", "m0"))
        admin_key = hub.admin_key
    repos = data / "repos" / "team"
    shutil.rmtree(repos / "half-made.git")  # a creation cut short: a row, no repository
    with contextlib.closing(sqlite3.connect(data / "amphub.db")) as conn, conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM models WHERE id = 'half-deleted'")  # a deletion cut short
    scratch = ["objects/tmp_pack_x", "objects/pack/pack-dead.pack", "refs/heads/master.lock"]
    for name in [*scratch, "amphub-cache/clone.pack"]:
        (repos / "m0.git" / name).parent.mkdir(exist_ok=True)
        (repos / "m0.git" / name).write_bytes(b"left by a killed push")

    made = amphub(capsys, "backup", str(copy), "--data", str(data))
    assert made.returncode == 0, made.stderr
    assert "model team/half-made had no repository yet: made it, with its first commit" in (
        made.stdout.splitlines()
    )
    back = amphub(capsys, "restore", str(copy), "--data", str(restored))
    assert back.returncode == 0, back.stderr
    doctor = await amphub_process("doctor", "--data", str(restored), cwd=tmp_path)
    assert (doctor.returncode, doctor.stdout) == (0, "nothing is wrong\n")
    restored_m0 = restored / "repos" / "team" / "m0.git"
    assert sorted(model_repositories(restored / "repos")) == [("team", "half-made"), ("team", "m0")]
    assert push_leftovers(restored_m0) == []
    assert not (restored_m0 / "amphub-cache").exists()

    with caplog.at_level(logging.WARNING, logger="amphub"):
        async with running_hub(restored) as hub:
            hub.admin_key = admin_key
            assert [r.message for r in caplog.records if "repair" in r.message] == []
            for model in ("m0", "half-made"):
                clone = tmp_path / "clones" / model
                await git("clone", "-q", hub.remote("team", model), str(clone))
                await git("fsck", "--full", "--strict", cwd=clone)
            cloned = await git("rev-parse", "HEAD", cwd=tmp_path / "clones" / "m0")
            assert cloned.stdout.strip() == head

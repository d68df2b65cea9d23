"""Backup, restore and doctor of a hub whose metadata is in PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from amphub.cli import main
from amphub.config import Config
from amphub.services.backup import BackupError, backup
from tests.conftest import git, push, running_hub
from tests.postgres import PostgreSQL
from tests.test_pg_migrate import amphub_with


async def test_backup_restore_and_doctor_of_a_hub_on_postgresql(
    tmp_path: Path, fresh_database: str, postgresql: PostgreSQL
):
    await git("lfs", "install", "--skip-repo")
    data, copy, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    weights = os.urandom(3000)
    oid = hashlib.sha256(weights).hexdigest()
    async with running_hub(data, database=fresh_database) as hub:
        await hub.space_and_model("team", "m1")
        work = tmp_path / "work"
        await git("clone", "-q", hub.remote("team", "m1"), str(work))
        await git("lfs", "track", "*.bin", cwd=work)
        await push(work, {"weights.bin": weights, "notes.txt": "hello\n"})
        admin_key = hub.admin_key
        made = await amphub_with(
            {"AMPHUB_DATABASE": fresh_database},
            "backup",
            str(copy),
            "--data",
            str(data),
            cwd=tmp_path,
        )
    assert made.returncode == 0, made.stderr
    with pytest.raises(BackupError, match="holds no amphub repositories; check --data"):
        backup(Config(data_dir=tmp_path / "mistyped", database=fresh_database), tmp_path / "b2")
    said = made.stdout.splitlines()
    assert said[0].startswith("the metadata is in PostgreSQL, not in this backup"), said
    assert "copied 1 repositories" in said and "copied 1 LFS objects" in said, said
    assert (copy / "lfs-objects.txt").read_text() == f"{oid}\n"
    assert not (copy / "amphub.db").exists()

    # The operator's part: the database's own dump, restored into another database.
    dump, target = tmp_path / "metadata.dump", postgresql.create_database()
    subprocess.run(
        [str(postgresql.bin / "pg_dump"), "-Fc", "-f", str(dump), fresh_database], check=True
    )
    subprocess.run(
        [str(postgresql.bin / "pg_restore"), "--no-owner", "--dbname", target, str(dump)],
        check=True,
    )
    back = await amphub_with({}, "restore", str(copy), "--data", str(restored), cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert "restore its pg_dump into an empty database" in back.stdout

    on_target = {"AMPHUB_DATABASE": target}
    async with running_hub(restored, database=target) as hub:
        hub.admin_key = admin_key
        clone = tmp_path / "clone"
        await git("clone", "-q", hub.remote("team", "m1"), str(clone))
        assert (clone / "weights.bin").read_bytes() == weights

        # The doctor compares this database with the disk, as on SQLite.
        object_file = restored / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
        object_file.unlink()
        repos = restored / "repos" / "team"
        shutil.copytree(repos / "m1.git", repos / "ghost.git")
        doctor = await amphub_with(on_target, "doctor", "--data", str(restored), cwd=tmp_path)
        assert doctor.returncode == 1
        assert f"object {oid} (" in doctor.stdout and "is missing" in doctor.stdout, doctor
        assert "repository team/ghost has no model" in doctor.stdout
        repaired = await amphub_with(
            on_target, "doctor", "--repair", "--data", str(restored), cwd=tmp_path
        )
        assert "fixed: repository team/ghost had no model" in repaired.stdout, repaired
        assert f"wrong: object {oid} (" in repaired.stdout  # a person must push it again


def test_the_doctor_of_a_hub_on_postgresql_refuses_a_data_dir_without_repositories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("AMPHUB_DATABASE", "postgresql://nobody@127.0.0.1:9/none")
    assert main(["doctor", "--repair", "--data", str(tmp_path / "mistyped")]) == 2
    message = f"amphub: {tmp_path / 'mistyped'} holds no amphub repositories (no repos/);"
    assert capsys.readouterr().err == message + " check --data\n"
    assert not (tmp_path / "mistyped").exists()

"""`amphub doctor` on a live server's data dir: what it finds, what --repair fixes."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from amphub.http import keys
from tests.conftest import Hub, git, push, running_hub
from tests.test_cli import amphub_process

HOUR_AGO = time.time() - 7200


def object_file(hub: Hub, data: bytes) -> Path:
    oid = hashlib.sha256(data).hexdigest()
    return hub.data_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def aged(path: Path) -> Path:
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


async def doctor(hub: Hub, *flags: str) -> tuple[int, str]:
    done = await amphub_process("doctor", "--data", str(hub.data_dir), *flags, cwd=hub.data_dir)
    return done.returncode, done.stdout + done.stderr


async def test_doctor_finds_and_repairs_on_a_live_server(tmp_path):
    await git("lfs", "install", "--skip-repo")
    async with running_hub(tmp_path / "data") as hub:
        await hub.space_and_model("team", "m1")
        await hub.model("team", "m2")
        work = tmp_path / "w"
        files = {name: os.urandom(3000) for name in ("lost.bin", "cut.bin", "flipped.bin")}
        await push(work, {**files, "notes.txt": "hello\n"}, clone=hub.remote("team", "m1"))
        await push(tmp_path / "w2", {"a.txt": "a\n"}, clone=hub.remote("team", "m2"))
        code, out = await doctor(hub)
        assert (code, out) == (0, "nothing is wrong\n"), out

        object_file(hub, files["lost.bin"]).unlink()
        object_file(hub, files["cut.bin"]).write_bytes(b"short")
        flipped = object_file(hub, files["flipped.bin"])
        flipped.write_bytes(b"x" + files["flipped.bin"][1:])
        orphan = os.urandom(100)
        object_file(hub, orphan).parent.mkdir(parents=True, exist_ok=True)
        object_file(hub, orphan).write_bytes(orphan)
        aged(object_file(hub, orphan))
        repos = hub.server.app[keys.HUB].repos
        m1 = repos.path("team", "m1")
        old_scratch = aged_file(m1 / "objects" / "tmp_pack_old")
        young_scratch = m1 / "objects" / "tmp_pack_live"
        young_scratch.write_bytes(b"a live push's")
        shutil.copytree(m1, m1.with_name("ghost.git"))
        (pack,) = (repos.path("team", "m2") / "objects" / "pack").glob("*.pack")
        damaged = bytearray(pack.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        pack.chmod(0o600)
        pack.write_bytes(bytes(damaged))

        code, out = await doctor(hub)
        assert code == 1
        assert f"object {hashlib.sha256(files['lost.bin']).hexdigest()}" in out
        assert "is missing: push it again" in out
        assert "has 5 bytes, not 3000" in out
        assert "is stored but no model has it" in out
        assert "1 file that interrupted writes left in team/m1" in out
        assert "repository team/ghost has no model" in out
        assert "repository team/m2: " in out and "cannot be read" in out
        assert "does not hash" not in out  # only with --verify-objects
        assert "`amphub doctor --repair` fixes 4 of these" in out, out

        code, out = await doctor(hub, "--repair", "--verify-objects")
        assert code == 1  # the lost object and the damaged pack need a person
        assert out.count("fixed: ") == 5 and "does not hash to its oid" in out
        assert not flipped.exists() and not object_file(hub, orphan).exists()
        assert not old_scratch.exists() and young_scratch.exists()
        assert not m1.with_name("ghost.git").exists()

        await git("lfs", "push", "--all", "origin", cwd=work)
        assert (await hub.call("DELETE", "/api/v1/models/team/m2"))[0] in (200, 202, 204)
        assert await doctor(hub) == (0, "nothing is wrong\n")


def aged_file(path: Path) -> Path:
    path.write_bytes(b"a killed push's")
    return aged(path)

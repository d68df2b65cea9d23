"""Air gap: `amphub admin export` on one hub, `amphub admin import` on another, then git.

Both hubs serve while the commands run on their data dirs, as an administrator would
run them. The file is read back as the tar it is to tamper with it.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from amphub.cli import main
from amphub.clock import rfc3339
from tests.conftest import Hub, git, push, running_hub, write_from_outside
from tests.test_hf_download import Evil, safetensors
from tests.test_mirror import MIB

FILES = {
    "README.md": b"---\nlicense: mit\n---\n# gpt\n",
    "config.json": b'{"hidden_size": 8}\n',
    "model.safetensors": safetensors(MIB),
}


async def amphub(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command line on a thread (it runs its own event loop): status, output."""
    status = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return status, out + err


def rewrite(source: Path, dest: Path, change, extra: str | None = None) -> None:
    """Copy an export file, each member's bytes passed through `change(name, data)`.

    With `extra`, a member of that name is added after the manifest.
    """
    with tarfile.open(source) as tar, tarfile.open(dest, "w") as out:
        for member in tar:
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
            if extra and member.name == "manifest.json":
                out.addfile(tarfile.TarInfo(extra), io.BytesIO())


async def model_status(hub: Hub, space: str, model: str) -> int:
    status, _ = await hub.call("GET", f"/api/v1/models/{space}/{model}")
    return status


async def test_export_import_round_trip_and_refusals(hub, tmp_path, capsys):
    await git("lfs", "install", "--skip-repo")
    await hub.space_and_model("team", "gpt")
    work = tmp_path / "work"
    await push(work, FILES, "weights", clone=hub.remote("team", "gpt"))
    await push(work, {"config.json": b'{"hidden_size": 16}\n'}, "bigger")
    exported = tmp_path / "gpt.amphub"
    status, said = await amphub(
        capsys, "admin", "export", "team/gpt", str(exported), "--data", str(hub.data_dir)
    )
    assert status == 0, said
    assert "1 LFS objects" in said
    with tarfile.open(exported) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names[:2] == ["manifest.json", "model.bundle"] and len(names) == 3
    assert manifest["model"] == "team/gpt" and manifest["revision"] == "master"

    async with running_hub(tmp_path / "other", quota_unit=MIB) as other:
        await other.space("lab")
        await other.space("tiny", quota=MIB)  # the safetensors file alone is a little more
        data = str(other.data_dir)
        status, said = await amphub(
            capsys, "admin", "import", str(exported), "--space", "lab", "--data", data
        )
        assert status == 0, said
        assert "as lab/gpt (private)" in said and "its scan passed" in said
        clone = tmp_path / "clone"
        await git("clone", "-q", other.remote("lab", "gpt"), str(clone))
        for name, content in {**FILES, "config.json": b'{"hidden_size": 16}\n'}.items():
            assert (clone / name).read_bytes() == content, name
        assert (await git("log", "--format=%s", cwd=clone)).stdout.split() == [
            "bigger",
            "weights",
            "Initial",
            "commit",
        ]
        await git("fsck", "--strict", cwd=clone)
        assert "OK" in (await git("lfs", "fsck", cwd=clone)).stdout
        _, scans = await other.call("GET", "/api/v1/tasks?kind=scan&model=lab/gpt")
        assert scans["tasks"][0]["status"] == "succeeded"

        # The same name again: refused, saying so.
        status, said = await amphub(
            capsys, "admin", "import", str(exported), "--space", "lab", "--data", data
        )
        assert status == 1 and "model lab/gpt exists already" in said and "--name" in said

        # An LFS object changed in the file: refused, and nothing is left of the model.
        tampered = tmp_path / "tampered.amphub"
        flip = lambda name, b: b[:-1] + bytes([b[-1] ^ 1]) if name.startswith("lfs/") else b  # noqa: E731
        rewrite(exported, tampered, flip)
        status, said = await amphub(
            capsys, "admin", "import", str(tampered), "--space", "lab", "--name", "t",
            "--data", data,
        )  # fmt: skip
        assert status == 1 and "is not the object it names" in said, said
        assert await model_status(other, "lab", "t") == 404

        # A bundle whose tip is not the manifest's commit.
        moved = lambda name, b: (  # noqa: E731
            b.replace(manifest["commit"].encode(), b"0" * 40) if name == "manifest.json" else b
        )
        rewrite(exported, tampered, moved)
        status, said = await amphub(
            capsys, "admin", "import", str(tampered), "--space", "lab", "--name", "t",
            "--data", data,
        )  # fmt: skip
        assert status == 1 and "not the manifest's" in said, said
        assert await model_status(other, "lab", "t") == 404

        # A member the manifest does not name, where the bundle belongs.
        rewrite(exported, tampered, lambda name, b: b, extra="../../escape")
        status, said = await amphub(
            capsys, "admin", "import", str(tampered), "--space", "lab", "--name", "t",
            "--data", data,
        )  # fmt: skip
        assert status == 1 and "holds '../../escape' where model.bundle belongs" in said, said
        assert not (other.data_dir.parent / "escape").exists()

        # A space past its end date is read-only: no import either.
        await other.space("old")
        yesterday = rfc3339(datetime.now(UTC) - timedelta(days=1))
        expire = ("UPDATE spaces SET expires_at = ? WHERE id = ?", (yesterday, "old"))
        await write_from_outside(other.database_target, expire)
        status, said = await amphub(
            capsys, "admin", "import", str(exported), "--space", "old", "--data", data
        )
        assert status == 1 and "space old expired on" in said and "read-only" in said, said

        # No room in the space: refused before the copy, with the quota's sentence.
        status, said = await amphub(
            capsys, "admin", "import", str(exported), "--space", "tiny", "--data", data
        )
        assert status == 1 and "space tiny is over its quota" in said, said
        assert await model_status(other, "tiny", "gpt") == 404


async def test_import_scan_gate_refuses_unsafe_and_suspicious_as_the_setting_says(
    hub, tmp_path, capsys, monkeypatch
):
    await git("lfs", "install", "--skip-repo")
    await hub.space("team")
    models = {
        "bad": {"model.pkl": pickle.dumps(Evil(), protocol=2), "config.json": b"{}\n"},
        "odd": {"model.safetensors": safetensors(MIB) + bytes(16)},  # bytes after the tensors
    }
    files = {}
    for model, content in models.items():
        await hub.model("team", model)
        await push(tmp_path / model, content, model, clone=hub.remote("team", model))
        files[model] = tmp_path / f"{model}.amphub"
        status, said = await amphub(
            capsys, "admin", "export", f"team/{model}", str(files[model]),
            "--data", str(hub.data_dir),
        )  # fmt: skip
        assert status == 0, said
    async with running_hub(tmp_path / "other") as other:
        await other.space("lab")
        data = str(other.data_dir)

        async def import_(model: str, *more: str) -> tuple[int, str]:
            return await amphub(
                capsys, "admin", "import", str(files[model]), "--space", "lab", "--data", data,
                *more,
            )  # fmt: skip

        status, said = await import_("bad")
        assert status == 1
        assert "import refused: its scan found it unsafe (model.pkl:" in said, said
        assert await model_status(other, "lab", "bad") == 404
        status, said = await import_("odd")  # mirror_suspicious = warn, the default
        assert status == 0 and "warning: its scan found it suspicious" in said, said
        monkeypatch.setenv("AMPHUB_MIRROR_SUSPICIOUS", "block")
        status, said = await import_("odd", "--name", "odd2")
        assert status == 1
        assert "import refused: its scan found it suspicious (model.safetensors:" in said, said
        assert await model_status(other, "lab", "odd2") == 404

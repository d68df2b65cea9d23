"""amphub behind nginx, as the README deploys it: `base_url` is nginx's address and every
client (git, git-lfs, huggingface_hub) goes through it. One node today; the multi-node
tests add a second to `nginx.front`."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import hf_hub_download

from tests.conftest import git, push, running_hub
from tests.load_balancer import Nginx
from tests.test_hf_download import hf, hf_home  # noqa: F401  (hf_home: autouse)

MIB = 1024 * 1024


async def test_clone_push_lfs_and_hf_download_through_nginx(nginx: Nginx, tmp_path: Path):
    await git("lfs", "install", "--skip-repo")
    seen = nginx.access_log_size()
    async with running_hub(tmp_path / "data", base_url=nginx.url) as hub:
        hub.url = nginx.front(hub.server.port)
        await hub.space_and_model("team", "m1")
        weights, text = os.urandom(3 * MIB), os.urandom(MIB).hex()  # 2 MiB in git itself
        work = tmp_path / "work"
        await push(work, {"weights.bin": weights, "data.txt": text}, clone=hub.remote("team", "m1"))

        fresh = tmp_path / "fresh"
        await git("clone", "-q", hub.remote("team", "m1"), str(fresh))
        await git("lfs", "fsck", cwd=fresh)
        assert (fresh / "weights.bin").read_bytes() == weights
        assert (fresh / "data.txt").read_text() == text

        path = await hf(
            hf_hub_download,
            "team/m1",
            "weights.bin",
            endpoint=nginx.url,
            token=hub.admin_key,
            cache_dir=tmp_path / "hf-cache",
        )
        assert Path(path).read_bytes() == weights

    # The LFS actions named nginx's address (base_url), so the object went through it.
    log = nginx.access_log_since(seen)
    assert '"POST /team/m1.git/info/lfs/objects/batch' in log
    assert '"PUT /team/m1.git/info/lfs/objects/' in log
    assert '"GET /team/m1.git/info/lfs/objects/' in log
    assert '"GET /team/m1/resolve/main/weights.bin' in log

"""Refs, trees and blobs through the API, after pushes with the real git and git-lfs."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Hub, git, push

MIB = 1024 * 1024


async def pushed_model(hub: Hub, tmp_path: Path) -> tuple[Path, bytes]:
    await git("lfs", "install", "--skip-repo")
    await hub.space_and_model("team", "m1")
    work = tmp_path / "w"
    weights = os.urandom(MIB)
    files = {
        "weights/model.safetensors": weights,
        "config.json": '{"hidden": 768, "名前": "大"}\n',
        "raw.dat": b"\0\1\2" * 100,
    }
    await push(work, files, "files", clone=hub.remote("team", "m1"), tag="v1")
    return work, weights


async def test_refs_tree_and_blob(hub: Hub, tmp_path: Path) -> None:
    work, weights = await pushed_model(hub, tmp_path)
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    status, refs = await hub.call("GET", "/api/v1/models/team/m1/refs")
    assert status == 200
    assert refs == {
        "branches": [{"name": "master", "commit": head}],
        "tags": [{"name": "v1", "commit": head}],
    }

    for rev in ("master", "v1", head):
        status, tree = await hub.call("GET", f"/api/v1/models/team/m1/tree/{rev}")
        assert status == 200, tree
        entries = {e["path"]: e for e in tree["entries"]}
        assert entries["weights"] == {"path": "weights", "type": "directory", "size": None}
        assert entries["config.json"]["binary"] is False
        assert entries["raw.dat"]["binary"] is True
    status, tree = await hub.call("GET", "/api/v1/models/team/m1/tree/master/weights")
    (entry,) = tree["entries"]
    assert entry["path"] == "weights/model.safetensors" and entry["size"] == MIB
    assert entry["lfs"]["size"] == MIB and len(entry["lfs"]["oid"]) == 64

    status, body = await hub.call("GET", "/api/v1/models/team/m1/blob/master/config.json")
    assert status == 200 and body == '{"hidden": 768, "名前": "大"}\n'
    url = hub.base + "/api/v1/models/team/m1/blob/v1/weights/model.safetensors"
    headers = {"Authorization": f"Bearer {hub.admin_key}"}
    async with hub.session.get(url, headers=headers) as resp:
        assert resp.status == 200 and await resp.read() == weights
    async with hub.session.get(url, headers={**headers, "Range": "bytes=100-199"}) as resp:
        assert resp.status == 206 and await resp.read() == weights[100:200]
    url = hub.base + "/api/v1/models/team/m1/blob/master/raw.dat"
    async with hub.session.get(url, headers={**headers, "Range": "bytes=-10"}) as resp:
        assert resp.status == 206 and await resp.read() == (b"\0\1\2" * 100)[-10:]
        assert resp.headers["Content-Range"] == "bytes 290-299/300"
    async with hub.session.get(url, headers={**headers, "Range": "bytes=400-"}) as resp:
        assert resp.status == 416


async def test_files_are_sent_as_content_never_as_a_page(hub: Hub, tmp_path: Path) -> None:
    await pushed_model(hub, tmp_path)
    headers = {"Authorization": f"Bearer {hub.admin_key}"}
    for path in (
        "/api/v1/models/team/m1/blob/master/config.json",
        "/api/v1/models/team/m1/blob/master/raw.dat",
        "/api/v1/models/team/m1/blob/master/weights/model.safetensors",
        "/team/m1/resolve/master/config.json",
        "/team/m1/resolve/master/weights/model.safetensors",
    ):
        async with hub.session.get(hub.base + path, headers=headers) as resp:
            assert resp.status == 200, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff", path
            assert resp.headers["Content-Security-Policy"] == "default-src 'none'; sandbox", path


async def test_missing_revisions_and_paths(hub: Hub, tmp_path: Path) -> None:
    await pushed_model(hub, tmp_path)
    cases = [
        ("/api/v1/models/team/m1/tree/nope", 404, "no branch, tag or commit nope"),
        ("/api/v1/models/team/m1/tree/master/nope", 404, "no nope in this revision"),
        ("/api/v1/models/team/m1/blob/master/weights", 404, "is a folder"),
        ("/api/v1/models/team/m1/tree/master/config.json", 404, "is a file"),
        (
            "/api/v1/models/team/m1/blob/" + "0" * 40 + "/config.json",
            404,
            "no branch, tag or commit",
        ),
    ]
    for path, status, message in cases:
        got, body = await hub.call("GET", path)
        assert got == status, (path, body)
        assert message in body["error"]["message"]


async def test_files_need_read_permission(hub: Hub, tmp_path: Path) -> None:
    await pushed_model(hub, tmp_path)
    await hub.user("eve")
    await hub.call("PUT", "/api/v1/models/team/m1/members/eve", json={"role": "visitor"})
    status, _ = await hub.call("GET", "/api/v1/models/team/m1", user="eve")
    assert status == 200
    for path in ("refs", "tree/master", "blob/master/config.json"):
        assert (await hub.call("GET", f"/api/v1/models/team/m1/{path}", user="eve"))[0] == 403
        assert (await hub.call("GET", f"/api/v1/models/team/m1/{path}", user=""))[0] == 401


async def test_a_commit_no_branch_or_tag_holds_is_not_served(hub: Hub, tmp_path: Path) -> None:
    await hub.space_and_model("team", "m1")
    work = tmp_path / "w"
    kept = await push(work, {"a.txt": "kept\n"}, clone=hub.remote("team", "m1"))
    gone = await push(work, {"b.txt": "deleted with its branch\n"}, branch="feature")
    old_master = await push(work, {"c.txt": "rewound away\n"}, branch="master")
    reads = (
        "/api/v1/models/team/m1/tree/{}",
        "/api/v1/models/team/m1/blob/{}/a.txt",
        "/team/m1/resolve/{}/a.txt",
        "/api/models/team/m1/revision/{}",
    )
    for commit in (kept, gone, old_master):
        for read in reads:
            assert (await hub.call("GET", read.format(commit)))[0] == 200, (read, commit)
    await git("push", "-q", "origin", ":feature", cwd=work)
    await git("push", "-q", "-f", "origin", f"{kept}:master", cwd=work)
    for read in reads:
        assert (await hub.call("GET", read.format(kept)))[0] == 200
        for commit in (gone, old_master):
            assert (await hub.call("GET", read.format(commit)))[0] == 404, (read, commit)


async def test_large_file_in_git_is_read_whole_through_every_route(hub: Hub, tmp_path: Path):
    await hub.space_and_model("team", "m1")
    work = tmp_path / "w"
    first = os.urandom(3 * MIB)
    await push(work, {"data/big.dat": first}, "big", clone=hub.remote("team", "m1"))
    # A second version that git stores as a delta on the first.
    second = first[:MIB] + b"changed" + first[MIB:]
    await push(work, {"data/big.dat": second}, "changed")
    headers = {"Authorization": f"Bearer {hub.admin_key}"}
    for rev, data in (("master", second), ("master~1", first)):
        commit = (await git("rev-parse", rev, cwd=work)).stdout.strip()
        for path in (
            f"/api/v1/models/team/m1/blob/{commit}/data/big.dat",
            f"/team/m1/raw/{commit}/data/big.dat",
            f"/team/m1/resolve/{commit}/data/big.dat",
        ):
            async with hub.session.get(hub.base + path, headers=headers) as resp:
                assert resp.status == 200, path
                assert resp.headers["Content-Length"] == str(len(data)), path
                assert await resp.read() == data, path
            ranged = {**headers, "Range": f"bytes={MIB - 5}-{2 * MIB}"}
            async with hub.session.get(hub.base + path, headers=ranged) as resp:
                assert resp.status == 206 and await resp.read() == data[MIB - 5 : 2 * MIB + 1]
        status, tree = await hub.call("GET", f"/api/v1/models/team/m1/tree/{commit}/data")
        assert tree["entries"] == [
            {"path": "data/big.dat", "type": "file", "size": len(data), "binary": True}
        ]
        async with hub.session.head(hub.base + path, headers=headers) as resp:
            assert resp.headers["Content-Length"] == str(len(data))
    status, info = await hub.call("GET", "/api/models/team/m1/tree/main/data")
    assert status == 200 and info[0]["size"] == len(second)

"""Fetches CI and partial clones make: by commit id, shallow by depth/date/ref, filtered."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from dulwich.protocol import pkt_line

from amphub.http import keys
from amphub.storage.repos import PACK_CACHE_DIR
from tests.conftest import Hub, git, write_files

DAY = 86400
START = 1_700_000_000


@pytest.fixture(params=[0, 2], ids=["v0", "v2"])
def protocol(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every git command of the test speaks this protocol version (git 2.39 asks for 2)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(request.param))
    return int(request.param)


async def dated_history(hub: Hub, tmp_path: Path, commits: int = 6) -> Path:
    """A clone whose master has `commits` more commits, one a day, each changing two files."""
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1"), str(work))
    for i in range(commits):
        write_files(work, {"d/big.txt": f"{i}\n" * 2000, "small.txt": f"{i}\n"})
        await git("add", "-A", cwd=work)
        date = f"@{START + i * DAY} +0000"
        await git("commit", "-q", "-m", f"day {i}", cwd=work, GIT_COMMITTER_DATE=date)
    await git("push", "-q", "origin", "master", cwd=work)
    return work


async def rev(repo: Path, name: str) -> str:
    return (await git("rev-parse", name, cwd=repo)).stdout.strip()


async def count(repo: Path, *args: str) -> int:
    return int((await git("rev-list", "--count", *args, cwd=repo)).stdout)


async def missing_objects(repo: Path) -> list[str]:
    """Objects a partial clone knows of and does not have."""
    out = await git("rev-list", "--objects", "--all", "--missing=print", cwd=repo)
    return [line[1:] for line in out.stdout.split() if line.startswith("?")]


async def test_fetch_of_a_commit_that_no_ref_points_at(hub, model_repo, tmp_path, protocol):
    work = await dated_history(hub, tmp_path)
    old = await rev(work, "master~3")
    ci = tmp_path / "ci"
    await git("init", "-q", str(ci))
    await git("fetch", "-q", "--depth=1", hub.remote("team", "m1"), old, cwd=ci)
    await git("checkout", "-q", "FETCH_HEAD", cwd=ci)
    assert (ci / "small.txt").read_text() == "2\n"
    await git("fsck", "--strict", cwd=ci)


async def test_commits_no_ref_reaches_stay_refused(hub, model_repo, tmp_path, protocol):
    work = await dated_history(hub, tmp_path, commits=1)
    await git("checkout", "-q", "-b", "gone", cwd=work)
    write_files(work, {"secret.txt": "secret\n"})
    await git("add", "secret.txt", cwd=work)
    await git("commit", "-q", "-m", "secret", cwd=work)
    secret = await rev(work, "HEAD")
    blob = await rev(work, "HEAD:secret.txt")
    await git("push", "-q", "origin", "gone", cwd=work)
    await git("push", "-q", "origin", "--delete", "gone", cwd=work)
    for sha in (secret, blob):
        ci = tmp_path / f"ci-{sha}"
        await git("init", "-q", str(ci))
        failed = await git("fetch", hub.remote("team", "m1"), sha, cwd=ci, check=False)
        assert failed.returncode != 0
        assert (await git("cat-file", "-e", sha, cwd=ci, check=False)).returncode != 0


async def test_deepen_shallow_since_and_shallow_exclude(hub, model_repo, tmp_path, protocol):
    work = await dated_history(hub, tmp_path)
    await git("tag", "day2", "master~3", cwd=work)
    await git("push", "-q", "origin", "day2", cwd=work)
    url = hub.remote("team", "m1")

    shallow = tmp_path / "shallow"
    await git("clone", "-q", "--depth", "1", url, str(shallow))
    deepen = await git("fetch", "-q", "--deepen=2", cwd=shallow, GIT_TRACE_PACKET="1")
    assert ("fetch< version 2" in deepen.stderr) is (protocol == 2)
    assert await count(shallow, "HEAD") == 3
    assert (shallow / ".git/shallow").read_text().split() == [await rev(work, "master~2")]

    since = tmp_path / "since"
    await git("clone", "-q", f"--shallow-since=@{START + 3 * DAY}", url, str(since))
    assert await count(since, "HEAD") == 3

    exclude = tmp_path / "exclude"
    await git("clone", "-q", "--shallow-exclude=day2", url, str(exclude))
    assert await count(exclude, "HEAD") == 3
    for copy in (shallow, since, exclude):
        await git("fsck", "--strict", cwd=copy)
    await git("fetch", "-q", "--unshallow", cwd=exclude)
    assert await count(exclude, "HEAD") == 7
    await git("fsck", "--strict", cwd=exclude)


async def test_blob_none_clone_checks_out_older_commits(hub, model_repo, tmp_path, protocol):
    work = await dated_history(hub, tmp_path)
    cache = hub.data_dir / "repos/team/m1.git" / PACK_CACHE_DIR
    await hub.server.app[keys.HUB].background.drain()
    shutil.rmtree(cache)  # made after the push
    partial = tmp_path / "partial"
    url = hub.remote("team", "m1")
    clone = await git("clone", "-q", "--filter=blob:none", url, str(partial), GIT_TRACE_PACKET="1")
    assert ("clone< version 2" in clone.stderr) is (protocol == 2)
    assert len(await missing_objects(partial)) == 10  # older versions of the two files
    await git("checkout", "-q", "master~4", cwd=partial)
    assert (partial / "d/big.txt").read_text() == "1\n" * 2000
    await git("fsck", "--strict", cwd=partial)
    # The pack of the clone was kept (the lazy fetches' were not), and serves the next one;
    # the objects the refs reach were listed once for the lazy fetches.
    assert len(list(cache.glob("*.pack"))) == 1
    assert len(list(cache.glob("*.reachable"))) == 1
    again = tmp_path / "again"
    await git("clone", "-q", "--filter=blob:none", hub.remote("team", "m1"), str(again))
    assert len(await missing_objects(again)) == 10
    assert len(list(cache.glob("*.pack"))) == 1
    # A later fetch of new commits stays partial and checks out.
    write_files(work, {"later.txt": "later\n"})
    await git("add", "later.txt", cwd=work)
    await git("commit", "-q", "-m", "later", cwd=work)
    await git("push", "-q", cwd=work)
    await git("checkout", "-q", "master", cwd=partial)
    await git("pull", "-q", cwd=partial)
    assert (partial / "later.txt").read_text() == "later\n"


async def test_blob_limit_and_tree_depth_clones(hub, model_repo, tmp_path, protocol):
    await dated_history(hub, tmp_path)
    url = hub.remote("team", "m1")
    limited = tmp_path / "limited"
    await git("clone", "-q", "--no-checkout", "--filter=blob:limit=1k", url, str(limited))
    missing = await missing_objects(limited)
    # Six versions of d/big.txt and .gitattributes; cat-file fetches them one by one.
    sizes = [int((await git("cat-file", "-s", sha, cwd=limited)).stdout) for sha in missing]
    assert len(missing) == 7 and min(sizes) >= 1024
    await git("checkout", "-q", "master", cwd=limited)
    await git("fsck", "--strict", cwd=limited)

    trees = tmp_path / "trees"
    await git("clone", "-q", "--filter=tree:0", url, str(trees))
    assert (trees / "d/big.txt").read_text() == "5\n" * 2000
    await git("checkout", "-q", "master~5", cwd=trees)
    assert (trees / "d/big.txt").read_text() == "0\n" * 2000
    await git("fsck", "--strict", cwd=trees)


async def test_push_options_are_accepted_and_reach_the_record(hub, model_repo, tmp_path, caplog):
    caplog.set_level(logging.INFO, "amphub.push")
    work = await dated_history(hub, tmp_path, commits=1)
    write_files(work, {"o.txt": "o\n"})
    await git("add", "o.txt", cwd=work)
    await git("commit", "-q", "-m", "with options", cwd=work)
    await git("push", "-q", "-o", "ci.skip", "-o", "note=a b", cwd=work)
    assert await rev(work, "HEAD") in (await git("ls-remote", hub.remote("team", "m1"))).stdout
    assert "with options ['ci.skip', 'note=a b']" in caplog.text


async def test_protocol_v2_ls_refs_with_a_prefix(hub, model_repo, tmp_path, protocol):
    work = await dated_history(hub, tmp_path, commits=1)
    await git("tag", "-a", "v1", "-m", "release", cwd=work)
    await git("push", "-q", "origin", "v1", cwd=work)
    url = hub.remote("team", "m1")
    heads = await git("ls-remote", "--heads", url, GIT_TRACE_PACKET="1")
    assert heads.stdout.split() == [await rev(work, "master"), "refs/heads/master"]
    assert ("ls-remote< version 2" in heads.stderr) is (protocol == 2)
    assert ("ref-prefix refs/heads/" in heads.stderr) is (protocol == 2)
    every = (await git("ls-remote", url)).stdout.split()
    assert every[every.index("refs/tags/v1^{}") - 1] == await rev(work, "master")
    assert every[every.index("HEAD") - 1] == await rev(work, "master")


async def test_protocol_v2_object_info_gives_sizes_of_reachable_objects_only(
    hub, model_repo, tmp_path
):
    work = await dated_history(hub, tmp_path, commits=1)
    blob = await rev(work, "HEAD:d/big.txt")

    async def object_info(oid: str) -> tuple[int, str]:
        body = pkt_line(b"command=object-info\n") + b"0001" + pkt_line(b"size\n")
        body += pkt_line(b"oid %s\n" % oid.encode()) + pkt_line(None)
        headers = {
            "Git-Protocol": "version=2",
            "Content-Type": "application/x-git-upload-pack-request",
        }
        return await hub.call("POST", "/team/m1.git/git-upload-pack", data=body, headers=headers)

    status, answer = await object_info(blob)
    assert status == 200
    assert answer == "0009size\n" + pkt_line(b"%s 4000\n" % blob.encode()).decode() + "0000"
    status, _ = await object_info("3" * 40)
    assert status == 400


def sideband_pack(answer: bytes) -> bytes:
    """The pack of a v2 fetch answer: its packfile section's band-1 data."""
    pack, at, in_pack = b"", 0, False
    while at < len(answer):
        size = int(answer[at : at + 4], 16)
        line, at = answer[at + 4 : at + size], at + max(size, 4)
        if in_pack and line[:1] == b"\x01":
            pack += line[1:]
        in_pack = in_pack or line == b"packfile\n"
    return pack


async def test_a_fetch_without_thin_pack_gets_a_pack_that_stands_alone(hub, model_repo, tmp_path):
    work = await dated_history(hub, tmp_path, commits=1)
    big = work / "d" / "big.txt"
    big.write_text(big.read_text() + "one line more\n")  # a delta on the day before's
    await git("commit", "-q", "-am", "edit", cwd=work)
    await git("push", "-q", "origin", "master", cwd=work)
    head, parent = await rev(work, "master"), await rev(work, "master~1")
    headers = {
        "Git-Protocol": "version=2",
        "Content-Type": "application/x-git-upload-pack-request",
        "Authorization": f"Bearer {hub.admin_key}",
    }

    async def indexed(*flags: bytes) -> int:
        """`git index-pack` (which completes no thin pack) of the pack fetched with `flags`."""
        body = pkt_line(b"command=fetch\n") + b"0001"
        lines = (*flags, b"want " + head.encode(), b"have " + parent.encode(), b"done")
        body += b"".join(pkt_line(line + b"\n") for line in lines) + pkt_line(None)
        url = f"{hub.base}/team/m1.git/git-upload-pack"
        async with hub.session.post(url, data=body, headers=headers) as resp:
            assert resp.status == 200
            pack = sideband_pack(await resp.read())
        empty = tmp_path / f"empty-{len(flags)}"
        await git("init", "-q", "--bare", str(empty))
        (empty / "fetched.pack").write_bytes(pack)
        return (await git("index-pack", "fetched.pack", cwd=empty, check=False)).returncode

    # A thin pack's deltas name objects the client has (d/big.txt before the edit).
    assert await indexed(b"thin-pack", b"ofs-delta") != 0
    # Without thin-pack, as git's upload-pack serves it: every delta's base is in the pack.
    assert await indexed(b"ofs-delta") == 0


async def test_protocol_v2_server_options_and_wait_for_done_as_git_serves_them(
    hub, model_repo, tmp_path
):
    work = await dated_history(hub, tmp_path, commits=2)
    url = hub.remote("team", "m1")
    v2 = ("-c", "protocol.version=2")
    listed = await git(*v2, "ls-remote", "-o", "x", url, GIT_TRACE_PACKET="1")
    assert "ls-remote< fetch=shallow wait-for-done filter" in listed.stderr
    assert "ls-remote< server-option" in listed.stderr
    await git(*v2, "fetch", "-q", "--server-option=ci.skip", "--server-option=a b", cwd=work)

    head, parent = await rev(work, "master"), await rev(work, "master~1")
    headers = {"Git-Protocol": "version=2", "Content-Type": "application/x-git-upload-pack-request"}

    async def fetch(*arguments: bytes) -> str:
        body = pkt_line(b"command=fetch\n") + pkt_line(b"server-option=x\n") + b"0001"
        body += b"".join(pkt_line(a + b"\n") for a in (b"thin-pack", b"ofs-delta", *arguments))
        body += pkt_line(None)
        status, answer = await hub.call(
            "POST", "/team/m1.git/git-upload-pack", data=body, headers=headers
        )
        assert status == 200, answer
        return answer

    want, have = b"want " + head.encode(), b"have " + parent.encode()
    # wait-for-done: the haves are acknowledged, no `ready` and no pack until `done`.
    waiting = await fetch(b"wait-for-done", want, have)
    ack = pkt_line(b"ACK %s\n" % parent.encode()).decode()
    assert waiting == "0014acknowledgments\n" + ack + "0000"
    assert "packfile\n" in await fetch(b"wait-for-done", want, have, b"done")
    assert "ready\n" in await fetch(want, have)
    # sideband-all (and packfile-uris) are not advertised, as git's defaults: refused.
    with pytest.raises(AssertionError, match="unknown fetch argument sideband-all"):
        await fetch(b"sideband-all", want, b"done")

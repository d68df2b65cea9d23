"""upload-pack from stored packs: cached full clones, fetches, tags, shallow, garbage."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from dulwich.protocol import pkt_line

from amphub.git import upload, upload_request
from amphub.http import keys
from amphub.storage import rebuilt_blobs
from amphub.storage.repos import PACK_CACHE_DIR, repo_size
from tests.conftest import Hub, commit, git

WANT = b"want " + b"1" * 40


def repo_dir(hub: Hub) -> Path:
    return hub.data_dir / "repos" / "team" / "m1.git"


def cached_packs(hub: Hub) -> list[Path]:
    return sorted((repo_dir(hub) / PACK_CACHE_DIR).glob("*.pack"))


async def bare_clone(hub: Hub, tmp_path: Path, name: str, *args: str) -> Path:
    target = tmp_path / name
    await git("clone", "-q", "--bare", *args, hub.remote("team", "m1"), str(target))
    await git("fsck", "--strict", "--no-dangling", cwd=target)
    return target


async def rev(repo: Path, name: str) -> str:
    return (await git("rev-parse", name, cwd=repo)).stdout.strip()


async def refs_of(repo: Path) -> str:
    return (await git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo)).stdout


async def has_object(repo: Path, sha: str) -> bool:
    return (await git("cat-file", "-e", sha, cwd=repo, check=False)).returncode == 0


async def warmed(hub: Hub) -> None:
    """Wait until the packs made after the pushes so far are made."""
    await hub.server.app[keys.HUB].background.drain()


async def history(hub: Hub, tmp_path: Path, commits: int = 5) -> Path:
    """A working clone with a few commits on master, pushed; no cached pack left."""
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1"), str(work))
    for i in range(commits):
        await commit(work, {f"dir{i % 2}/f{i}.txt": f"line\n{i}\n" * 200}, f"commit {i}")
    await git("push", "-q", "origin", "master", cwd=work)
    await warmed(hub)
    shutil.rmtree(repo_dir(hub) / PACK_CACHE_DIR)  # made after the push
    return work


async def test_second_clone_is_served_from_the_cache(hub, model_repo, tmp_path, monkeypatch):
    work = await history(hub, tmp_path)
    await git("tag", "-a", "v1", "-m", "release", "HEAD~2", cwd=work)
    await git("push", "-q", "origin", "v1", cwd=work)
    first = await bare_clone(hub, tmp_path, "first")  # at once: made by the clone or waited for
    await warmed(hub)
    assert len(cached_packs(hub)) == 2  # the full clone's and the blob:none clone's

    def no_read(*args):
        raise AssertionError("the cached pack should have been served")

    monkeypatch.setattr(upload, "read_all_objects", no_read)
    second = await bare_clone(hub, tmp_path, "second")
    assert await refs_of(second) == await refs_of(first)
    assert "refs/tags/v1" in await refs_of(second)
    assert (await git("cat-file", "-t", "v1", cwd=second)).stdout.strip() == "tag"
    partial = await bare_clone(hub, tmp_path, "partial", "--filter=blob:none")
    assert await refs_of(partial) == await refs_of(first)


async def test_a_push_makes_the_packs_of_the_next_clones(hub, model_repo, tmp_path, monkeypatch):
    work = await history(hub, tmp_path)
    await commit(work, {"new.txt": "new\n"}, "pushed")
    await git("push", "-q", cwd=work)
    await warmed(hub)  # made from one read of the packs
    await git("checkout", "-q", "-b", "gone", cwd=work)
    secret = await commit(work, {"secret.txt": "secret\n"}, "secret")
    await git("push", "-q", "origin", "gone", cwd=work)
    await git("checkout", "-q", "master", cwd=work)
    await commit(work, {"dir0/f0.txt": "changed\n"}, "second")
    await git("tag", "-a", "v2", "-m", "release", cwd=work)
    await git("push", "-q", "origin", "master", "v2", cwd=work)
    await warmed(hub)  # made from those of the refs before and the pushed objects

    def no_read(*args):
        raise AssertionError("the packs made after the push should have been served")

    async def clones(name: str) -> Path:
        with monkeypatch.context() as patched:
            patched.setattr(upload, "read_all_objects", no_read)
            full = await bare_clone(hub, tmp_path, name)  # fsck --strict --no-dangling
            partial = tmp_path / f"{name}-partial"
            await git("clone", "-q", "--filter=blob:none", hub.remote("team", "m1"), str(partial))
            await git("checkout", "-q", "HEAD~4", cwd=partial)  # lazy fetches: reachable ids
            assert (partial / "dir0/f0.txt").read_text() == "line\n0\n" * 200
            await git("fsck", "--strict", cwd=partial)
        assert await rev(full, "master") == await rev(work, "master")
        assert await rev(full, "v2") == await rev(work, "v2")
        return full

    assert await has_object(await clones("extended"), secret)
    await git("push", "-q", "origin", "--delete", "gone", cwd=work)
    await warmed(hub)  # a tip is no longer reached: read again, without the branch's objects
    assert not await has_object(await clones("after-delete"), secret)


async def test_push_invalidates_the_cached_pack(hub, model_repo, tmp_path):
    work = await history(hub, tmp_path)
    await bare_clone(hub, tmp_path, "before")
    head = await commit(work, {"new.txt": "new\n"}, "after the first clone")
    await git("push", "-q", cwd=work)
    after = await bare_clone(hub, tmp_path, "after")
    assert (await git("rev-parse", "master", cwd=after)).stdout.strip() == head
    await warmed(hub)
    assert len(cached_packs(hub)) == 3  # the first clone's; the full and blob:none of the push


async def test_cache_keeps_only_the_newest_packs(hub, model_repo, tmp_path):
    work = await history(hub, tmp_path, commits=1)
    for i in range(upload.CACHE_KEEP + 2):
        await commit(work, {"n.txt": str(i)}, f"n{i}")
        await git("push", "-q", cwd=work)
        await bare_clone(hub, tmp_path, f"c{i}")
    assert len(cached_packs(hub)) == upload.CACHE_KEEP


async def test_annotated_and_lightweight_tags_are_cloned(hub, model_repo, tmp_path):
    work = await history(hub, tmp_path)
    await git("tag", "-a", "v1", "-m", "first", "HEAD~3", cwd=work)
    await git("tag", "-a", "v2", "-m", "second", cwd=work)
    await git("tag", "light", "HEAD~1", cwd=work)
    await git("push", "-q", "origin", "--tags", cwd=work)
    for name in ("cold", "warm"):
        copy = tmp_path / name
        await git("clone", "-q", hub.remote("team", "m1"), str(copy))
        assert (await git("tag", cwd=copy)).stdout.split() == ["light", "v1", "v2"]
        assert (await git("cat-file", "-t", "v1", cwd=copy)).stdout.strip() == "tag"
        await git("fsck", "--strict", cwd=copy)


async def test_no_tags_clone_gets_no_tags(hub, model_repo, tmp_path):
    work = await history(hub, tmp_path)
    await git("tag", "-a", "v1", "-m", "first", cwd=work)
    await git("push", "-q", "origin", "v1", cwd=work)
    await bare_clone(hub, tmp_path, "with-tags")
    copy = tmp_path / "copy"
    await git("clone", "-q", "--no-tags", hub.remote("team", "m1"), str(copy))
    assert (await git("tag", cwd=copy)).stdout == ""
    await git("fsck", "--strict", cwd=copy)


async def test_shallow_clone_then_full_clone(hub, model_repo, tmp_path):
    await history(hub, tmp_path)
    shallow = tmp_path / "shallow"
    await git("clone", "-q", "--depth", "1", hub.remote("team", "m1"), str(shallow))
    assert (await git("rev-list", "--count", "HEAD", cwd=shallow)).stdout.strip() == "1"
    full = await bare_clone(hub, tmp_path, "full")
    assert (await git("rev-list", "--count", "master", cwd=full)).stdout.strip() == "6"
    await git("fetch", "-q", "--unshallow", cwd=shallow)
    await git("fsck", "--strict", cwd=shallow)


async def test_fetch_gets_thin_deltas_that_check_out(hub, model_repo, tmp_path):
    work = await history(hub, tmp_path)
    reader = tmp_path / "reader"
    await git("clone", "-q", hub.remote("team", "m1"), str(reader))
    for i in range(3):
        text = "".join(f"line {n} of {i}\n" for n in range(2000))
        await commit(work, {"dir0/f0.txt": text}, f"edit {i}")
    await git("tag", "-a", "v3", "-m", "tagged with the fetch", cwd=work)
    await git("push", "-q", "origin", "master", "v3", cwd=work)
    await git("pull", "-q", cwd=reader)
    assert (reader / "dir0/f0.txt").read_text() == (work / "dir0/f0.txt").read_text()
    assert (await git("cat-file", "-t", "v3", cwd=reader)).stdout.strip() == "tag"
    await git("fsck", "--strict", cwd=reader)


async def test_deleted_branch_and_force_pushed_commits_are_not_cloned(hub, model_repo, tmp_path):
    work = await history(hub, tmp_path)
    await git("checkout", "-q", "-b", "secret", cwd=work)
    await commit(work, {"secret.txt": "do not ship\n"}, "secret")
    secret_blob = (await git("rev-parse", "HEAD:secret.txt", cwd=work)).stdout.strip()
    await git("push", "-q", "origin", "secret", cwd=work)
    await git("checkout", "-q", "master", cwd=work)
    dropped = await commit(work, {"oops.txt": "oops\n"}, "oops")
    await git("push", "-q", cwd=work)
    await git("push", "-q", "origin", "--delete", "secret", cwd=work)
    await git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    await git("push", "-q", "--force", cwd=work)

    copy = await bare_clone(hub, tmp_path, "copy")
    assert not await has_object(copy, secret_blob)
    assert not await has_object(copy, dropped)
    assert await has_object(copy, "master~5")


async def test_pack_with_unreachable_deltas_is_rewritten(hub, model_repo, tmp_path):
    # One push carries both branches, their versions of a file deltified on each other;
    # deleting one branch leaves that pack half reachable.
    work = await history(hub, tmp_path, commits=1)
    lines = [f"{n} the quick brown fox\n" for n in range(3000)]
    await commit(work, {"big.txt": "".join(lines)}, "big")
    await git("push", "-q", cwd=work)
    await git("checkout", "-q", "-b", "side", cwd=work)
    for i in range(3):
        lines[i * 7] = f"side {i}\n"
        side = await commit(work, {"big.txt": "".join(lines)}, f"side {i}")
    await git("checkout", "-q", "master", cwd=work)
    for i in range(3):
        lines[i * 11] = f"master {i}\n"
        await commit(work, {"big.txt": "".join(lines)}, f"master {i}")
    await git("push", "-q", "origin", "master", "side", cwd=work)
    await git("push", "-q", "origin", "--delete", "side", cwd=work)

    copy = await bare_clone(hub, tmp_path, "copy")
    assert not await has_object(copy, side)
    assert (await git("show", "master:big.txt", cwd=copy)).stdout == "".join(lines)


async def test_unrelated_history_force_pushed_over_the_first_commit(hub, model_repo, tmp_path):
    first = (await git("ls-remote", hub.remote("team", "m1"), "master")).stdout.split()[0]
    other = tmp_path / "other"
    await git("init", "-q", str(other))
    await commit(other, {"a.txt": "a\n"}, "a")
    await git("push", "-q", "--force", hub.remote("team", "m1"), "master", cwd=other)
    copy = await bare_clone(hub, tmp_path, "copy")
    assert not await has_object(copy, first)


async def test_failed_cache_write_leaves_nothing_to_serve(hub, model_repo, tmp_path, monkeypatch):
    await history(hub, tmp_path)
    write_pack = upload.write_clone_pack

    def crash(out, *args):
        out(b"PACK\x00\x00\x00\x02\x00\x00\x00\x05" + os.urandom(100))
        raise OSError("disk gone")

    monkeypatch.setattr(upload, "write_clone_pack", crash)
    failed = await git(
        "clone", "-q", "--bare", hub.remote("team", "m1"), str(tmp_path / "x"), check=False
    )
    assert failed.returncode != 0
    assert cached_packs(hub) == []
    assert list((repo_dir(hub) / PACK_CACHE_DIR).iterdir()) == []

    monkeypatch.setattr(upload, "write_clone_pack", write_pack)
    await bare_clone(hub, tmp_path, "copy")
    assert len(cached_packs(hub)) == 1


async def test_leftover_temp_files_are_never_served_and_get_removed(hub, model_repo, tmp_path):
    await history(hub, tmp_path)
    cache = repo_dir(hub) / PACK_CACHE_DIR
    cache.mkdir()
    stale = cache / "tmp-crashed.partial"
    stale.write_bytes(b"PACK" + os.urandom(64))
    old = time.time() - 2 * rebuilt_blobs.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    await bare_clone(hub, tmp_path, "copy")
    assert not stale.exists()
    assert len(cached_packs(hub)) == 1


async def test_concurrent_cold_clones(hub, model_repo, tmp_path):
    await history(hub, tmp_path)
    await asyncio.gather(*(bare_clone(hub, tmp_path, f"c{i}") for i in range(4)))
    assert len(cached_packs(hub)) == 1


async def test_existing_repo_gets_multi_pack_index_off(hub, model_repo, tmp_path):
    config = repo_dir(hub) / "config"
    assert "multiPackIndex = false" in config.read_text()
    config.write_text(config.read_text().replace("\tmultiPackIndex = false\n", ""))
    await bare_clone(hub, tmp_path, "copy")
    assert "multiPackIndex = false" in config.read_text()


async def test_repo_size_leaves_out_the_cache(hub, model_repo, tmp_path):
    await history(hub, tmp_path)
    before = repo_size(repo_dir(hub))
    await bare_clone(hub, tmp_path, "copy")
    assert cached_packs(hub)
    assert repo_size(repo_dir(hub)) == before


def test_request_head_is_parsed_and_dulwich_sees_only_the_wants():
    shallow = b"shallow " + b"2" * 40 + b"\n"
    lines = [WANT + b" side-band-64k deepen-relative\n", shallow, b"deepen 3\n"]
    lines.append(b"filter blob:limit=1k\n")
    body = b"".join(pkt_line(line) for line in lines) + pkt_line(None) + pkt_line(b"done\n")
    chunks = [body[:7], body[7:]]
    head = upload_request.read_request_head(lambda size: chunks.pop(0) if chunks else b"")
    request = upload_request.parse_request(head)
    assert request.wants == [b"\x11" * 20]
    assert request.client_shallow == {b"\x22" * 20}
    assert (request.depth, request.relative, request.filter_spec) == (3, True, b"blob:limit=1k")
    assert request.negotiation == pkt_line(lines[0]) + pkt_line(None) + pkt_line(b"done\n")


def test_replay_returns_the_head_then_the_rest():
    rest = [b"tail"]
    replay = upload._Replay(b"0008abcd0000", lambda size: rest.pop(0) if rest else b"")
    assert replay.recv(5) == b"0008a"
    assert replay.recv(100) == b"bcd0000"
    assert replay.recv(100) == b"tail"
    assert replay.recv(100) == b""

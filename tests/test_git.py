"""Clone, push and pull with the real git against a real server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import os
import subprocess
from pathlib import Path

import aiohttp
import pytest
from dulwich.protocol import pkt_line

from amphub import db
from amphub.git.prune import prune_left_behind
from amphub.http import keys
from tests.conftest import FakeClock, Hub, commit, git, push, running_hub


async def clone(hub: Hub, tmp_path: Path, name: str, *args: str, user: str = "admin") -> Path:
    target = tmp_path / name
    await git("clone", *args, hub.remote("team", "m1", user), str(target))
    return target


async def remote_head(hub: Hub, ref: str = "refs/heads/master") -> str:
    out = (await git("ls-remote", hub.remote("team", "m1"), ref)).stdout
    return out.split()[0] if out else ""


async def test_clone_new_model_has_readme_and_lfs_attributes(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    readme = (work / "README.md").read_text()
    assert readme.startswith("---\nTraining framework:")
    assert (
        "*.safetensors filter=lfs diff=lfs merge=lfs -text" in (work / ".gitattributes").read_text()
    )
    log = (await git("log", "--format=%s", cwd=work)).stdout.split("\n")
    assert log[0] == "Initial commit"
    assert (await git("symbolic-ref", "HEAD", cwd=work)).stdout.strip() == "refs/heads/master"


async def test_push_over_one_mib_then_clone_and_pull(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    payload = os.urandom(3 * 1024 * 1024)
    head = await commit(work, {"weights.raw": payload}, "add 3 MiB")
    await git("push", "origin", "master", cwd=work)
    assert await remote_head(hub) == head

    other = await clone(hub, tmp_path, "other")
    assert (other / "weights.raw").read_bytes() == payload

    newer = await commit(work, {"notes.txt": "more\n"}, "notes")
    await git("push", cwd=work)
    await git("pull", "-q", cwd=other)
    assert (await git("rev-parse", "HEAD", cwd=other)).stdout.strip() == newer
    assert (other / "notes.txt").read_text() == "more\n"


async def test_push_is_recorded_and_updates_model_time(hub, model_repo, tmp_path):
    _, before = await hub.call("GET", "/api/v1/models/team/m1")
    work = await clone(hub, tmp_path, "w")
    head = await commit(work, {"a.txt": "a"}, "a")
    await git("push", cwd=work)
    async with db.opened(hub.database_target) as database:
        pushes = await db.list_pushes(database, "team", "m1")
    assert [(p.user, p.ref, p.new) for p in pushes] == [("admin", "refs/heads/master", head)]
    _, after = await hub.call("GET", "/api/v1/models/team/m1")
    assert after["updated_at"] >= before["updated_at"]


async def test_a_push_is_recorded_before_its_client_hears_of_it(hub, model_repo, tmp_path):
    # git hangs up once it has read the report; aiohttp then cancels the handler, so a
    # record made after the report could be lost while the refs have moved.
    work = await clone(hub, tmp_path, "w")
    old = await remote_head(hub)
    new = await commit(work, {"a.txt": "a"}, "a")
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs"],
        input=f"{new}\n^{old}\n".encode(),
        cwd=work,
        capture_output=True,
        check=True,
    ).stdout
    command = f"{old} {new} refs/heads/master\0report-status side-band-64k\n".encode()
    headers = {
        "Authorization": aiohttp.encode_basic_auth("admin", hub.admin_key),
        "Content-Type": "application/x-git-receive-pack-request",
    }
    url = hub.remote("team", "m1", user=None) + "/git-receive-pack"
    database = hub.server.app[keys.HUB].db
    body = pkt_line(command) + b"0000" + pack
    async with hub.session.post(url, data=body, headers=headers) as resp:
        pushes = await db.list_pushes(database, "team", "m1")
        assert resp.status == 200
        assert b"ok refs/heads/master" in await resp.read()
    assert [(p.ref, p.old, p.new) for p in pushes] == [("refs/heads/master", old, new)]


async def test_shallow_clone(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    for i in range(3):
        await commit(work, {f"f{i}.txt": str(i)}, f"commit {i}")
    await git("push", cwd=work)
    shallow = await clone(hub, tmp_path, "shallow", "--depth", "1")
    count = (await git("rev-list", "--count", "HEAD", cwd=shallow)).stdout.strip()
    assert count == "1"
    assert (shallow / "f2.txt").read_text() == "2"
    await git("fetch", "--unshallow", cwd=shallow)
    assert (await git("rev-list", "--count", "HEAD", cwd=shallow)).stdout.strip() == "4"


async def test_tags_branches_and_deletion(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    await git("tag", "-a", "v1.0", "-m", "first release", cwd=work)
    await git("push", "origin", "v1.0", cwd=work)
    await git("checkout", "-q", "-b", "dev", cwd=work)
    dev = await commit(work, {"dev.txt": "dev"}, "dev work")
    await git("push", "-u", "origin", "dev", cwd=work)
    refs = (await git("ls-remote", hub.remote("team", "m1"))).stdout
    assert f"{dev}\trefs/heads/dev" in refs
    assert "refs/tags/v1.0" in refs and "refs/tags/v1.0^{}" in refs

    copy = await clone(hub, tmp_path, "copy")
    assert "v1.0" in (await git("tag", cwd=copy)).stdout

    await git("push", "origin", "--delete", "dev", cwd=work)
    await git("push", "origin", "--delete", "v1.0", cwd=work)
    refs = (await git("ls-remote", hub.remote("team", "m1"))).stdout
    assert "refs/heads/dev" not in refs and "refs/tags" not in refs


async def test_default_branch_cannot_be_deleted(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    head = await remote_head(hub)
    result = await git("push", "origin", "--delete", "master", cwd=work, check=False)
    assert result.returncode != 0
    assert "default branch and cannot be deleted" in result.stderr
    assert await remote_head(hub) == head


async def test_non_fast_forward_refused_and_force_push_accepted(hub, model_repo, tmp_path):
    first = await clone(hub, tmp_path, "first")
    second = await clone(hub, tmp_path, "second")
    pushed = await commit(first, {"a.txt": "a"}, "from first")
    await git("push", cwd=first)

    mine = await commit(second, {"b.txt": "b"}, "from second")
    await git("fetch", cwd=second)
    refused = await git("push", cwd=second, check=False)
    assert refused.returncode != 0
    assert "[rejected]" in refused.stderr and "non-fast-forward" in refused.stderr
    assert await remote_head(hub) == pushed

    await git("push", "--force", cwd=second)
    assert await remote_head(hub) == mine


async def test_ref_outside_branches_and_tags_refused(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    result = await git("push", "origin", "HEAD:refs/custom/x", cwd=work, check=False)
    assert result.returncode != 0
    assert "only branches (refs/heads/...) and tags (refs/tags/...) can be pushed" in result.stderr
    refs = (await git("ls-remote", hub.remote("team", "m1"))).stdout
    assert "refs/custom" not in refs


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        ("refs/heads/a", "refs/heads/a/b", "cannot create refs/heads/a/b: refs/heads/a exists"),
        ("refs/heads/a/b", "refs/heads/a", "cannot create refs/heads/a: refs/heads/a/b exists"),
        (None, "refs/heads/HEAD", "HEAD is not a valid branch name"),
        (None, "refs/heads/" + "x" * 5000, "ref name longer than 1024 bytes"),
    ],
    ids=["file-then-folder", "folder-then-file", "HEAD", "long-name"],
)
async def test_refs_that_cannot_be_stored_are_refused_with_a_sentence(
    hub, model_repo, tmp_path, first, second, said
):
    work = await clone(hub, tmp_path, "w")
    if first:
        await git("push", "origin", f"HEAD:{first}", cwd=work)
    result = await git("push", "origin", f"HEAD:{second}", cwd=work, check=False)
    assert result.returncode != 0
    assert said in result.stderr
    refs = (await git("ls-remote", hub.remote("team", "m1"))).stdout
    assert f"\t{second}\n" not in refs + "\n"
    # The server is fine afterwards: a push of an ordinary branch goes through.
    await git("push", "origin", "HEAD:refs/heads/after", cwd=work)


async def test_concurrent_pushes_to_one_branch_exactly_one_wins(hub, model_repo, tmp_path):
    base = await remote_head(hub)
    clones = [await clone(hub, tmp_path, f"c{i}") for i in range(6)]
    heads = [
        await commit(c, {"file.txt": f"version {i}\n" * 1000}, f"commit {i}")
        for i, c in enumerate(clones)
    ]
    results = await asyncio.gather(*(git("push", cwd=c, check=False) for c in clones))
    winners = [heads[i] for i, r in enumerate(results) if r.returncode == 0]
    assert len(winners) == 1, [r.stderr for r in results]
    final = await remote_head(hub)
    assert final == winners[0]
    # The winner moved master from the old value; every loser was told so.
    assert (
        await git("rev-parse", f"{final}^", cwd=clones[heads.index(final)])
    ).stdout.strip() == base
    for r in results:
        if r.returncode:
            assert "stale info" in r.stderr or "fetch first" in r.stderr or "rejected" in r.stderr


async def test_concurrent_clones_while_a_push_runs(hub, model_repo, tmp_path):
    work = await clone(hub, tmp_path, "w")
    for i in range(3):
        await commit(work, {f"blob{i}.raw": os.urandom(1024 * 1024)}, f"blob {i}")
    pushing = git("push", cwd=work)
    cloning = [
        git("clone", "-q", hub.remote("team", "m1"), str(tmp_path / f"reader{i}")) for i in range(4)
    ]
    await asyncio.gather(pushing, *cloning)
    for i in range(4):
        reader = tmp_path / f"reader{i}"
        await git("fsck", "--strict", cwd=reader)
        head = (await git("rev-parse", "HEAD", cwd=reader)).stdout.strip()
        assert head in (await git("rev-list", "HEAD", cwd=work)).stdout


async def test_url_without_git_suffix(hub, model_repo, tmp_path):
    url = hub.remote("team", "m1").removesuffix(".git")
    await git("clone", "-q", url, str(tmp_path / "w"))
    head = await commit(tmp_path / "w", {"x.txt": "x"}, "x")
    await git("push", "-q", cwd=tmp_path / "w")
    assert await remote_head(hub) == head


async def test_credential_helper_store_asks_once(hub, model_repo, tmp_path, isolated_git):
    await git(
        "config", "--global", "credential.helper", f"store --file {isolated_git}/.git-credentials"
    )
    host = hub.base.removeprefix("http://")
    (isolated_git / ".git-credentials").write_text(f"http://admin:{hub.admin_key}@{host}\n")
    url = hub.remote("team", "m1", user=None)
    await git("clone", "-q", url, str(tmp_path / "w"))
    head = await commit(tmp_path / "w", {"c.txt": "c"}, "c")
    await git("push", "-q", cwd=tmp_path / "w")
    assert await remote_head(hub) == head


async def test_credential_helper_with_wrong_key_fails_with_clear_message(
    hub, model_repo, tmp_path, isolated_git
):
    await git(
        "config", "--global", "credential.helper", f"store --file {isolated_git}/.git-credentials"
    )
    host = hub.base.removeprefix("http://")
    (isolated_git / ".git-credentials").write_text(f"http://admin:amp_wrong@{host}\n")
    result = await git(
        "clone", hub.remote("team", "m1", user=None), str(tmp_path / "w"), check=False
    )
    assert result.returncode != 0
    assert "remote: authentication failed: wrong user name or key" in result.stderr
    assert "Authentication failed" in result.stderr
    # git dropped the rejected credential from the store.
    assert "amp_wrong" not in (isolated_git / ".git-credentials").read_text()


async def test_no_credentials_means_git_asks(hub, model_repo, tmp_path):
    result = await git(
        "clone", hub.remote("team", "m1", user=None), str(tmp_path / "w"), check=False
    )
    assert result.returncode != 0
    assert "could not read Username" in result.stderr


async def test_regenerated_key_old_fails_new_works(hub, model_repo, tmp_path):
    await git("ls-remote", hub.remote("team", "m1"))
    status, body = await hub.call("POST", "/api/v1/me/key")
    assert status == 200
    old = await git("ls-remote", hub.remote("team", "m1"), check=False)
    assert old.returncode != 0 and "Authentication failed" in old.stderr
    hub.admin_key = body["key"]
    await git("ls-remote", hub.remote("team", "m1"))


async def test_disabled_user_refused(hub, model_repo, tmp_path):
    await hub.user("dora", creator=True)
    await hub.space("dora-space", owner="dora")
    await hub.call("POST", "/api/v1/spaces/dora-space/models", user="dora", json={"id": "m"})
    url = hub.remote("dora-space", "m", user="dora")
    await git("ls-remote", url)
    status, _ = await hub.call("PATCH", "/api/v1/users/dora", json={"disabled": True})
    assert status == 200
    result = await git("ls-remote", url, check=False)
    assert result.returncode != 0
    assert "remote: the account dora is disabled; ask an administrator" in result.stderr


async def test_unknown_model_is_not_found(hub, model_repo, tmp_path):
    result = await git("clone", hub.remote("team", "nope"), str(tmp_path / "w"), check=False)
    assert result.returncode != 0
    assert "not found" in result.stderr


async def test_other_users_private_model_is_not_found_for_clone_and_push(hub, model_repo, tmp_path):
    await hub.user("eve")
    url = hub.remote("team", "m1", user="eve")
    result = await git("clone", url, str(tmp_path / "w"), check=False)
    assert result.returncode != 0
    assert "remote: no model team/m1" in result.stderr and "not found" in result.stderr


async def test_push_refused_by_policy_says_why(hub, tmp_path):
    await hub.space_and_model("team", "m1", visibility="public")
    await hub.user("reader")
    await git("clone", "-q", hub.remote("team", "m1", user=None), str(tmp_path / "anon"))
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1", user="reader"), str(work))
    before = await remote_head(hub)
    await commit(work, {"x.txt": "x"}, "x")
    result = await git("push", cwd=work, check=False)
    assert result.returncode != 0
    assert (
        "remote: you may not push to model team/m1; ask its owner for the developer role"
        in result.stderr
    )
    assert await remote_head(hub) == before


async def test_anonymous_push_to_public_model_asks_for_credentials(hub, tmp_path):
    await hub.space_and_model("team", "m1", visibility="public")
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1", user=None), str(work))
    await commit(work, {"x.txt": "x"}, "x")
    result = await git("push", cwd=work, check=False)
    assert result.returncode != 0
    assert "could not read Username" in result.stderr


async def test_malformed_and_oversized_requests_get_400_and_server_keeps_serving(hub, model_repo):
    url = hub.remote("team", "m1", user=None)
    head = (await remote_head(hub)).encode()
    auth = {"Authorization": aiohttp.encode_basic_auth("admin", hub.admin_key)}
    upload = {"Content-Type": "application/x-git-upload-pack-request"}
    cases = [
        (b"zzzz", upload, 400, "malformed git request"),
        (b"0003", upload, 400, "malformed git request"),
        (b"00a0want short", upload, 400, "malformed git request"),
        (
            pkt_line(b"want " + b"0" * 40 + b"\n") + b"0000",
            {"Content-Type": "text/plain"},
            415,
            "expected Content-Type application/x-git-upload-pack-request",
        ),
    ]
    async with aiohttp.ClientSession(headers=auth) as session:
        for body, headers, status, message in cases:
            async with session.post(url + "/git-upload-pack", data=body, headers=headers) as resp:
                assert resp.status == status, await resp.text()
                assert message in await resp.text()

        async def endless():
            yield (
                pkt_line(
                    b"want " + head + b" multi_ack_detailed side-band-64k thin-pack ofs-delta\n"
                )
                + b"0000"
            )
            chunk = pkt_line(b"have " + b"1" * 40 + b"\n") * 20000
            for _ in range(11 * 1024 * 1024 // len(chunk) + 1):
                yield chunk

        async with session.post(url + "/git-upload-pack", data=endless(), headers=upload) as resp:
            assert resp.status == 413, await resp.text()
        async with session.get(url + "/info/refs?service=git-upload-pack") as resp:
            assert resp.status == 200
        async with session.get(url + "/info/refs") as resp:
            assert resp.status == 400
            assert "smart HTTP protocol only" in await resp.text()
    await git("ls-remote", hub.remote("team", "m1"))


async def test_gzip_request_body_is_decoded(hub, model_repo):
    head = (await remote_head(hub)).encode()
    body = pkt_line(b"want " + head + b" side-band-64k thin-pack ofs-delta\n") + b"0000"
    body += pkt_line(b"done\n")
    headers = {
        "Authorization": aiohttp.encode_basic_auth("admin", hub.admin_key),
        "Content-Type": "application/x-git-upload-pack-request",
        "Content-Encoding": "gzip",
    }
    url = hub.remote("team", "m1", user=None) + "/git-upload-pack"
    async with hub.session.post(url, data=gzip.compress(body), headers=headers) as resp:
        assert resp.status == 200
        assert b"PACK" in await resp.read()


async def test_fetch_with_many_haves(hub, model_repo, tmp_path):
    # git gzips negotiation bodies over 1 KiB: a fetch with many haves sends one.
    work = await clone(hub, tmp_path, "w")
    for i in range(40):
        await commit(work, {f"n{i}.txt": str(i)}, f"n{i}")
    await git("push", "-q", cwd=work)
    other = tmp_path / "other"
    await git("clone", "-q", hub.remote("team", "m1"), str(other))
    await git("checkout", "-q", "-b", "side", "HEAD~30", cwd=other)
    for i in range(40):
        await commit(other, {f"s{i}.txt": str(i)}, f"s{i}")
    await git("push", "-q", "origin", "side", cwd=other)
    await git("fetch", "-q", "origin", cwd=work)
    assert (await git("rev-parse", "origin/side", cwd=work)).stdout.strip() == (
        await git("rev-parse", "HEAD", cwd=other)
    ).stdout.strip()


async def test_restart_keeps_data(tmp_path):
    data = tmp_path / "data"
    async with running_hub(data) as hub:
        key = hub.admin_key
        await hub.space_and_model("team", "m1")
        work = await clone(hub, tmp_path, "w")
        head = await commit(work, {"kept.txt": "kept"}, "kept")
        await git("push", cwd=work)

    async with running_hub(data) as hub:
        assert hub.admin_key is None  # the administrator is created once
        hub.admin_key = key
        status, model = await hub.call("GET", "/api/v1/models/team/m1")
        assert status == 200 and model["id"] == "m1"
        copy = await clone(hub, tmp_path, "copy")
        assert (copy / "kept.txt").read_text() == "kept"
        assert (await git("rev-parse", "HEAD", cwd=copy)).stdout.strip() == head


async def test_what_a_deleted_or_rewound_branch_left_is_pruned_after_prune_days(tmp_path):
    clock = FakeClock()
    async with running_hub(tmp_path / "data", clock, prune_days=14) as hub:
        amphub = hub.server.app[keys.HUB]
        await hub.space_and_model("team", "m1")
        repo = amphub.repos.path("team", "m1")
        work = tmp_path / "w"
        first = await push(work, {"a.txt": "kept\n"}, clone=hub.remote("team", "m1"))
        await push(work, {"leak.txt": "a secret pushed by mistake\n"}, branch="feature")
        leak = (await git("rev-parse", "HEAD:leak.txt", cwd=work)).stdout.strip()
        await git("checkout", "-q", "-B", "master", first, cwd=work)
        await commit(work, {"b.txt": "next\n"}, "fast-forward")
        await git("push", "-q", "origin", "master", cwd=work)
        assert amphub.repos.rewritten_at(repo) is None  # a fast-forward leaves nothing

        await git("push", "-q", "origin", ":feature", cwd=work)
        assert amphub.repos.rewritten_at(repo) == clock().timestamp()
        await prune_left_behind(amphub)
        assert (await git("cat-file", "-e", leak, cwd=repo, check=False)).returncode == 0

        clock.advance(days=15)
        await prune_left_behind(amphub)
        assert (await git("cat-file", "-e", leak, cwd=repo, check=False)).returncode != 0
        assert amphub.repos.rewritten_at(repo) is None
        await git("fsck", "--no-dangling", cwd=repo)
        clone = tmp_path / "again"
        await git("clone", "-q", hub.remote("team", "m1"), str(clone))
        assert (clone / "b.txt").is_file() and not (clone / "leak.txt").exists()
        await git("push", "-q", "-f", "origin", f"{first}:master", cwd=work)
        assert amphub.repos.rewritten_at(repo) is not None  # a rewind marks it too


async def test_a_restart_repairs_what_crashed_pushes_and_model_changes_left(tmp_path):
    data_dir = tmp_path / "data"
    async with running_hub(data_dir) as hub:
        key, amphub = hub.admin_key, hub.server.app[keys.HUB]
        await hub.space_and_model("team", "m1")
        work = tmp_path / "w"
        await push(work, {"a.txt": "one\n"}, clone=hub.remote("team", "m1"))
        repo = amphub.repos.path("team", "m1")
        _, before = await hub.call("GET", "/api/v1/spaces/team")
        (repo / "objects" / "tmp_pack_x1").write_bytes(os.urandom(1024 * 1024))
        _, during = await hub.call("GET", "/api/v1/spaces/team")
        assert during["used"] == before["used"]  # a push's scratch never counts
        # A creation killed after its row was written, before its repository was made.
        await db.insert_model(amphub.db, "team", "half", "Half", "private", "admin")
    pack_dir = repo / "objects" / "pack"
    leftovers = [
        repo / "objects" / "tmp_pack_x1",
        pack_dir / f"pack-{'1' * 40}.pack",  # its index was never written
        pack_dir / f"pack-{'1' * 40}.idx.lock",
        repo / "refs" / "heads" / "master.lock",
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"left by a killed push")
    # A deletion killed after the row went, before the repository did.
    subprocess.run(["cp", "-a", str(repo), str(repo.with_name("ghost.git"))], check=True)

    async with running_hub(data_dir) as hub:
        hub.admin_key = key
        assert not any(leftover.exists() for leftover in leftovers)
        await git("remote", "set-url", "origin", hub.remote("team", "m1"), cwd=work)
        await push(work, {"b.txt": "two\n"})
        assert (await hub.call("GET", "/api/v1/models/team/half"))[0] == 200
        await git("clone", "-q", hub.remote("team", "half"), str(tmp_path / "half"))
        assert (tmp_path / "half" / "README.md").is_file()
        assert not repo.with_name("ghost.git").exists()
        (aside,) = (data_dir / "aside" / "repos" / "team").iterdir()
        assert aside.name.startswith("ghost.git.") and (aside / "HEAD").is_file()
        assert (await hub.call("GET", "/api/v1/models/team/ghost"))[0] == 404


async def test_pushes_creating_ten_thousand_tags_each_are_answered(hub, model_repo):
    # What `git push --tags` sends for 10,000 tags (git 2.39 itself then spends a minute
    # matching them before it sends anything, so the requests are made here).
    head = (await git("ls-remote", hub.remote("team", "m1"), "refs/heads/master")).stdout.split()[0]
    for first in (0, 10_000):
        names = [b"refs/tags/t%05d" % i for i in range(first, first + 10_000)]
        # Minutes before the fix: each ref re-listed every ref the repository had.
        async with asyncio.timeout(60):
            answer = await receive_pack(hub, [(b"0" * 40, head.encode(), name) for name in names])
        assert report_lines(answer) == [b"unpack ok\n"] + [b"ok %s\n" % name for name in names]

    refs = (await git("ls-remote", "--tags", hub.remote("team", "m1"))).stdout.splitlines()
    assert len(refs) == 20_000 and refs[-1] == f"{head}\trefs/tags/t19999"
    # One write (and disk flush) for all, not one per ref.
    repo = hub.data_dir / "repos" / "team" / "m1.git"
    assert not list((repo / "refs" / "tags").iterdir())
    assert (repo / "packed-refs").read_text().count(" refs/tags/t") == 20_000


async def receive_pack(hub: Hub, commands: list[tuple[bytes, bytes, bytes]]) -> bytes:
    """POST commands (old, new, ref) and an empty pack to receive-pack; the whole answer."""
    lines = [b"%s %s %s" % command for command in commands]
    empty_pack = b"PACK\0\0\0\2\0\0\0\0"
    body = (
        pkt_line(lines[0] + b"\0report-status side-band-64k")
        + b"".join(pkt_line(line) for line in lines[1:])
        + pkt_line(None)
        + empty_pack
        + hashlib.sha1(empty_pack).digest()
    )
    key = base64.b64encode(f"admin:{hub.admin_key}".encode()).decode()
    async with hub.session.post(
        hub.base + "/team/m1.git/git-receive-pack",
        data=body,
        headers={
            "Content-Type": "application/x-git-receive-pack-request",
            "Authorization": "Basic " + key,
        },
    ) as resp:
        assert resp.status == 200
        return await resp.read()


def pkt_lines(data: bytes) -> list[bytes]:
    lines, pos = [], 0
    while pos < len(data):
        size = int(data[pos : pos + 4], 16)
        if size:
            lines.append(data[pos + 4 : pos + size])
        pos += max(size, 4)
    return lines


def report_lines(answer: bytes) -> list[bytes]:
    """The report-status lines of a side-band-64k receive-pack answer."""
    return pkt_lines(b"".join(line[1:] for line in pkt_lines(answer) if line[:1] == b"\1"))

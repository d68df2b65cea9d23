"""huggingface_hub uploading to a real amphub: repos, commits, branches, tags, LFS, quota.

Every test runs twice: as huggingface_hub uploads by default, through Xet (hf_xet is
installed with it), and with `HF_HUB_DISABLE_XET=1`, through the LFS batch API.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError

from amphub import db
from amphub.http import keys
from tests.conftest import Hub, git, start_hub
from tests.test_hf_download import bearer, hf, hf_home  # noqa: F401  (hf_home: autouse)

MIB = 1024 * 1024
HF_README = """\
---
library_name: transformers
pipeline_tag: text-classification
license: apache-2.0
tags:
- tiny
datasets:
- imdb
---
# Tiny
"""


@pytest.fixture(autouse=True, params=["xet", "lfs"])
def transfer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the client sends large files: Xet (its default) or the LFS batch API."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", request.param == "lfs")
    return request.param


async def xet_chunks_stored(hub: Hub, model: str) -> int:
    """How many chunks of Xet uploads amphub stored for a model."""
    return await db.count_model_xet_chunks(hub.server.app[keys.HUB].db, "team", model)


@pytest.fixture
async def api(hub: Hub) -> HfApi:
    await hub.space("team")
    return HfApi(endpoint=hub.base, token=hub.admin_key)


async def until(condition, what: str) -> None:
    """Wait for background work (the card's re-indexing); a hang guard, not a timing check."""
    deadline = asyncio.get_running_loop().time() + 60
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def clone(hub: Hub, tmp_path: Path, model: str, name: str) -> Path:
    await git("lfs", "install", "--skip-repo")
    work = tmp_path / name
    await git("clone", "-q", hub.remote("team", model), str(work))
    return work


async def test_create_repo_in_a_space_the_key_may_use(hub, api):
    url = await hf(api.create_repo, "team/new", private=False)
    assert url.repo_id == "team/new" and url == f"{hub.base}/team/new"
    _, model = await hub.call("GET", "/api/v1/models/team/new")
    assert model["visibility"] == "public" and model["owner"] == "admin"
    with pytest.raises(HfHubHTTPError) as exists:
        await hf(api.create_repo, "team/new")
    assert exists.value.response.status_code == 409
    assert (await hf(api.create_repo, "team/new", exist_ok=True)).repo_id == "team/new"
    await hf(api.create_repo, "team/secret")
    _, model = await hub.call("GET", "/api/v1/models/team/secret")
    assert model["visibility"] == "private"  # amphub's default

    with pytest.raises(HfHubHTTPError) as no_space:
        await hf(api.create_repo, "lonely")
    assert no_space.value.response.status_code == 400 and "space/model" in str(no_space.value)
    await hub.user("bob")
    bob = HfApi(endpoint=hub.base, token=hub.keys["bob"])
    with pytest.raises(HfHubHTTPError) as refused:
        await hf(bob.create_repo, "team/bobs")
    assert refused.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError):
        await hf(api.create_repo, "team/data", repo_type="dataset")


async def test_upload_file_is_a_git_commit_that_git_pull_sees(hub, api, tmp_path):
    await hf(api.create_repo, "team/m")
    work = await clone(hub, tmp_path, "m", "work")
    info = await hf(
        api.upload_file,
        path_or_fileobj=HF_README.encode(),
        path_in_repo="README.md",
        repo_id="team/m",
    )
    await git("pull", "-q", cwd=work)
    assert (work / "README.md").read_text() == HF_README
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    assert info.oid == head and info.commit_url.endswith(f"/team/m/commit/{head}")
    log = (await git("log", "--format=%an <%ae>|%s", "-1", cwd=work)).stdout.strip()
    assert log == "admin <admin@amphub>|Upload README.md with huggingface_hub"

    pushes = await db.list_pushes(hub.server.app[keys.HUB].db, "team", "m")
    assert [(p.user, p.ref, p.new) for p in pushes] == [("admin", "refs/heads/master", head)]

    async def indexed() -> bool:
        _, model = await hub.call("GET", "/api/v1/models/team/m")
        return model["card"]["frameworks"] == ["Transformers"]

    await until(indexed, "the card's re-indexing")
    _, model = await hub.call("GET", "/api/v1/models/team/m")
    assert model["card"]["algorithm"] == "Text Classification"
    assert model["card"]["training_data"][0]["name"] == "imdb"
    card = (await hf(api.model_info, "team/m")).card_data.to_dict()
    assert card["Training framework"] == ["Transformers"] and card["Other tag"] == ["tiny"]
    assert card["Job type"] == {
        "Type": "Natural Language Processing",
        "Algorithm": "Text Classification",
    }
    assert card["library_name"] == "transformers"  # as written


async def test_upload_folder_with_a_50_mb_weight_file_then_clone_with_git_lfs(
    hub, api, tmp_path, transfer
):
    await hf(api.create_repo, "team/big")
    folder = tmp_path / "folder"
    files = {
        "model.safetensors": os.urandom(50 * MIB),
        "config.json": b'{"hidden_size": 8}\n',
        "tokenizer/vocab.txt": b"hello\nworld\n",
        "odd name [1].dat": b"\0binary, and no pattern routes it to LFS\n",
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    await hf(api.upload_folder, folder_path=str(folder), repo_id="team/big")

    work = await clone(hub, tmp_path, "big", "clone")
    for name, data in files.items():
        assert hashlib.sha256((work / name).read_bytes()).digest() == hashlib.sha256(data).digest()
    lfs_files = (await git("lfs", "ls-files", "--name-only", cwd=work)).stdout.splitlines()
    assert sorted(lfs_files) == ["model.safetensors", "odd name [1].dat"]
    assert (await git("status", "--porcelain", cwd=work)).stdout == ""
    await git("lfs", "fsck", cwd=work)
    tree = await hf(lambda: {f.path: f for f in api.list_repo_tree("team/big", recursive=True)})
    assert tree["model.safetensors"].lfs.size == 50 * MIB
    # Xet sends the weights as ~64 KiB chunks, each remembered where it was stored.
    assert (await xet_chunks_stored(hub, "big") > 50 * MIB // (128 * 1024)) == (transfer == "xet")

    again = await hf(api.upload_folder, folder_path=str(folder), repo_id="team/big")
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    assert again.oid == head  # nothing changed, so no commit


async def test_create_commit_with_additions_and_deletions(hub, api, tmp_path):
    await hf(api.create_repo, "team/c")
    first = await hf(
        api.create_commit,
        "team/c",
        operations=[
            CommitOperationAdd("keep.txt", b"keep\n"),
            CommitOperationAdd("old.txt", b"old\n"),
            CommitOperationAdd("runs/1/log.txt", b"1\n"),
            CommitOperationAdd("runs/2/weights.bin", os.urandom(MIB)),
        ],
        commit_message="first",
    )
    second = await hf(
        api.create_commit,
        "team/c",
        operations=[
            CommitOperationDelete("old.txt"),
            CommitOperationDelete("runs/", is_folder=True),
            CommitOperationAdd("new/notes.md", b"# notes\n"),
        ],
        commit_message="second",
        commit_description="cleaned up",
        parent_commit=first.oid,
    )
    files = await hf(api.list_repo_files, "team/c")
    assert files == [".gitattributes", "README.md", "keep.txt", "new/notes.md"]
    work = await clone(hub, tmp_path, "c", "work")
    message = (await git("log", "-1", "--format=%B", cwd=work)).stdout.strip()
    assert message == "second\n\ncleaned up"
    assert (await git("rev-parse", "HEAD~1", cwd=work)).stdout.strip() == first.oid

    stale = [CommitOperationAdd("late.txt", b"late\n")]
    with pytest.raises(HfHubHTTPError) as moved:
        await hf(
            api.create_commit,
            "team/c",
            operations=stale,
            commit_message="late",
            parent_commit=first.oid,
        )
    assert moved.value.response.status_code == 412
    with pytest.raises(RemoteEntryNotFoundError):
        await hf(api.delete_file, "nope.txt", "team/c")
    assert (await hf(api.model_info, "team/c")).sha == second.oid


async def test_branches_tags_and_delete_file(hub, api, tmp_path):
    await hf(api.create_repo, "team/b")
    start = (await hf(api.model_info, "team/b")).sha
    await hf(api.upload_file, path_or_fileobj=b"a\n", path_in_repo="a.txt", repo_id="team/b")
    await hf(api.create_branch, "team/b", branch="feature/x", revision=start)
    with pytest.raises(HfHubHTTPError) as exists:
        await hf(api.create_branch, "team/b", branch="feature/x")
    assert exists.value.response.status_code == 409
    await hf(api.create_branch, "team/b", branch="feature/x", exist_ok=True)
    on_branch = await hf(
        api.upload_file,
        path_or_fileobj=b"x\n",
        path_in_repo="x.txt",
        repo_id="team/b",
        revision="feature/x",
    )
    await hf(api.create_tag, "team/b", tag="v1", revision="feature/x", tag_message="first")
    await hf(api.create_tag, "team/b", tag="light")
    with pytest.raises(HfHubHTTPError) as tagged:
        await hf(api.create_tag, "team/b", tag="v1")
    assert tagged.value.response.status_code == 409

    assert await hf(api.list_repo_files, "team/b", revision="feature/x") == [
        ".gitattributes",
        "README.md",
        "x.txt",
    ]
    assert "x.txt" not in await hf(api.list_repo_files, "team/b")
    refs = await hf(api.list_repo_refs, "team/b")
    assert {(t.name, t.target_commit) for t in refs.tags} == {
        ("v1", on_branch.oid),
        ("light", (await hf(api.model_info, "team/b")).sha),
    }
    remote = (await git("ls-remote", hub.remote("team", "b"))).stdout
    assert f"{on_branch.oid}\trefs/heads/feature/x" in remote
    assert "refs/tags/v1^{}" in remote  # an annotated tag, since it has a message

    deleted = await hf(api.delete_file, "a.txt", "team/b")
    assert "a.txt" not in await hf(api.list_repo_files, "team/b")
    pushes = await db.list_pushes(hub.server.app[keys.HUB].db, "team", "b")
    assert [p.ref for p in pushes] == [
        "refs/heads/master",
        "refs/heads/feature/x",
        "refs/heads/feature/x",
        "refs/tags/v1",
        "refs/tags/light",
        "refs/heads/master",
    ]
    assert pushes[-1].new == deleted.oid


async def test_refusals_are_clear_errors(hub, api):
    await hf(api.create_repo, "team/r", private=False)
    with pytest.raises(HfHubHTTPError) as pull_request:
        await hf(
            api.upload_file,
            path_or_fileobj=b"x",
            path_in_repo="x.txt",
            repo_id="team/r",
            create_pr=True,
        )
    assert "no pull requests" in str(pull_request.value)
    await hub.user("bob")
    bob = HfApi(endpoint=hub.base, token=hub.keys["bob"])
    with pytest.raises(HfHubHTTPError) as reader:
        await hf(bob.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/r")
    assert reader.value.response.status_code == 403 and "developer role" in str(reader.value)
    nobody = HfApi(endpoint=hub.base, token=False)
    with pytest.raises(HfHubHTTPError) as anonymous:
        await hf(nobody.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/r")
    assert anonymous.value.response.status_code == 401


async def test_quota_refuses_an_upload_with_a_clear_error(tmp_path):
    server, key = await start_hub(tmp_path / "data", quota_unit=MIB)
    try:
        async with aiohttp.ClientSession() as session:
            hub = Hub(server, session, key, tmp_path / "data")
            await hub.space("team", quota=MIB)
            api = HfApi(endpoint=hub.base, token=key)
            await hf(api.create_repo, "team/q")
            with pytest.raises(HfHubHTTPError) as lfs:
                await hf(
                    api.upload_file,
                    path_or_fileobj=os.urandom(2 * MIB),
                    path_in_repo="w.bin",
                    repo_id="team/q",
                )
            assert lfs.value.response.status_code == 507
            assert "space team is over its quota" in str(lfs.value)
            assert "2.00 MiB more" in str(lfs.value)
            with pytest.raises(HfHubHTTPError) as inline:
                await hf(
                    api.upload_file,
                    path_or_fileobj=b"x" * (2 * MIB),
                    path_in_repo="big.txt",
                    repo_id="team/q",
                )
            assert inline.value.response.status_code == 507
            assert "push refused: space team is over its quota" in str(inline.value)
            assert await hf(api.list_repo_files, "team/q") == [".gitattributes", "README.md"]
    finally:
        await server.close()

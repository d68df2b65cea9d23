"""huggingface_hub downloading from a real amphub: files, snapshots, info, listings, privacy.

The client's calls block, so they run in threads (`hf`) while the server shares the
test's event loop. Nothing here talks to huggingface.co: every call gets `endpoint=`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pickle
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import disable_progress_bars

from tests.conftest import Hub, git, on_s3, push, wait_task
from tests.samples import SEED

MIB = 1024 * 1024


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@dataclass
class Pushed:
    """What `pushed` put in team/m1: files on master, a branch and a tag."""

    files: dict[str, bytes]
    master: str
    branch: str  # the head of feature/x, one commit after master
    tag: str  # v1, at master


async def hf(function, *args, **kwargs):
    """Run a blocking huggingface_hub call off the event loop the server runs on."""
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture(autouse=True)
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's own files in tmp_path, never the machine's token or cache."""
    home = tmp_path / "hf-home"
    for name in list(os.environ):
        if name.startswith("HF_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    disable_progress_bars()
    return home


@pytest.fixture
def api(hub: Hub) -> HfApi:
    return HfApi(endpoint=hub.base, token=hub.admin_key)


def bearer(hub: Hub, user: str = "admin") -> dict[str, str]:
    key = hub.admin_key if user == "admin" else hub.keys[user]
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def pushed(hub: Hub, model_repo, tmp_path: Path) -> Pushed:
    await git("lfs", "install", "--skip-repo")
    work = tmp_path / "work"
    files = {
        "README.md": SEED.encode(),
        "config.json": b'{"hidden_size": 8}\n',
        "weights/model.safetensors": safetensors(2 * MIB),
        "model.pkl": pickle.dumps(Evil(), protocol=2),
    }
    master = await push(work, files, "weights", clone=hub.remote("team", "m1"), tag="v1")
    branch = await push(work, {"extra.json": b"{}\n"}, "extra", branch="feature/x")
    return Pushed(files, master, branch, master)


def safetensors(size: int) -> bytes:
    """A valid safetensors file of one random tensor (random bytes alone scan as an error)."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    header += " " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header.encode() + os.urandom(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


async def test_resolve_answers_with_the_headers_the_client_relies_on(hub, pushed):
    if on_s3(hub):
        pytest.skip("on a bucket resolve redirects there (test_s3_objects checks its headers)")
    weights = pushed.files["weights/model.safetensors"]
    url = f"{hub.base}/team/m1/resolve/main/weights/model.safetensors"
    async with hub.session.head(url, headers=bearer(hub)) as resp:
        assert resp.status == 200
        assert resp.headers["X-Repo-Commit"] == pushed.master
        assert resp.headers["ETag"] == resp.headers["X-Linked-Etag"] == f'"{sha256(weights)}"'
        assert resp.headers["X-Linked-Size"] == resp.headers["Content-Length"] == str(len(weights))
        assert resp.headers["Accept-Ranges"] == "bytes"
    async with hub.session.get(url, headers={**bearer(hub), "Range": "bytes=1000-"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 1000-{len(weights) - 1}/{len(weights)}"
        assert resp.headers["ETag"] == f'"{sha256(weights)}"'
        assert await resp.read() == weights[1000:]

    config = pushed.files["config.json"]
    url = f"{hub.base}/team/m1/resolve/{pushed.master}/config.json"
    async with hub.session.get(url, headers=bearer(hub)) as resp:
        assert resp.status == 200 and await resp.read() == config
        assert resp.headers["ETag"] == f'"{git_blob_id(config)}"'
        assert "X-Linked-Etag" not in resp.headers
        assert resp.headers["Content-Length"] == str(len(config))
    async with hub.session.get(url, headers={**bearer(hub), "Range": "bytes=-3"}) as resp:
        assert resp.status == 206 and await resp.read() == config[-3:]
        assert (
            resp.headers["Content-Range"]
            == f"bytes {len(config) - 3}-{len(config) - 1}/{len(config)}"
        )


async def test_resolve_names_what_is_missing(hub, pushed):
    cases = [
        ("main/nope.json", "EntryNotFound", pushed.master),
        ("nope/config.json", "RevisionNotFound", None),
        ("main/weights", "EntryNotFound", pushed.master),
    ]
    answers = []
    for path, _, _ in cases:
        async with hub.session.head(
            f"{hub.base}/team/m1/resolve/{path}", headers=bearer(hub)
        ) as resp:
            answers.append(
                (
                    path,
                    resp.status,
                    resp.headers.get("X-Error-Code"),
                    resp.headers.get("X-Repo-Commit"),
                )
            )
    # One comparison of the whole table: a case that fails does not hide the others.
    assert answers == [(path, 404, code, commit) for path, code, commit in cases]


async def test_a_revision_that_is_not_a_ref_name_reads_nothing(hub, pushed):
    # Decoded, these name files of the repository directory, not refs.
    revisions = ("..%2F..%2FHEAD", "..%2Fconfig", "heads%2F..%2F..%2FHEAD")
    answers = []
    for revision in revisions:
        url = f"{hub.base}/team/m1/resolve/{revision}/config.json"
        async with hub.session.get(url, headers=bearer(hub)) as resp:
            answers.append((revision, resp.status, resp.headers.get("X-Error-Code")))
    assert answers == [(revision, 404, "RevisionNotFound") for revision in revisions]


async def test_hf_hub_download_fills_the_cache_as_from_the_hub(hub, pushed, tmp_path):
    cache = tmp_path / "cache"
    weights = await hf(
        hf_hub_download,
        "team/m1",
        "weights/model.safetensors",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=cache,
    )
    config = await hf(
        hf_hub_download,
        "team/m1",
        "config.json",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=cache,
    )
    assert Path(weights).read_bytes() == pushed.files["weights/model.safetensors"]
    assert Path(config).read_bytes() == pushed.files["config.json"]
    storage = cache / "models--team--m1"
    blobs = sorted(p.name for p in (storage / "blobs").iterdir())
    expected = [
        sha256(pushed.files["weights/model.safetensors"]),
        git_blob_id(pushed.files["config.json"]),
    ]
    assert blobs == sorted(expected)
    assert (storage / "refs" / "main").read_text() == pushed.master
    assert Path(weights) == storage / "snapshots" / pushed.master / "weights" / "model.safetensors"

    again = await hf(
        hf_hub_download,
        "team/m1",
        "config.json",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=cache,
    )
    assert again == config


async def test_snapshot_download_at_branch_tag_and_commit_with_patterns(hub, pushed, tmp_path):
    def listing(folder: str) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())

    cache = tmp_path / "cache"
    common = {"endpoint": hub.base, "token": hub.admin_key, "cache_dir": cache}
    on_branch = await hf(snapshot_download, "team/m1", revision="feature/x", **common)
    assert "extra.json" in listing(on_branch)
    assert Path(on_branch).name == pushed.branch
    on_tag = await hf(snapshot_download, "team/m1", revision="v1", **common)
    assert "extra.json" not in listing(on_tag) and Path(on_tag).name == pushed.master
    at_commit = await hf(snapshot_download, "team/m1", revision=pushed.master, **common)
    assert listing(at_commit) == sorted([".gitattributes", *pushed.files])
    assert (Path(at_commit) / "weights/model.safetensors").read_bytes() == pushed.files[
        "weights/model.safetensors"
    ]
    only_json = await hf(
        snapshot_download,
        "team/m1",
        revision="feature/x",
        allow_patterns=["*.json"],
        **{**common, "cache_dir": tmp_path / "json-only"},
    )
    assert listing(only_json) == ["config.json", "extra.json"]
    assert (cache / "models--team--m1" / "refs" / "feature" / "x").read_text() == pushed.branch


async def test_model_info_with_card_files_and_security_status(hub, pushed, api):
    info = await hf(api.model_info, "team/m1", files_metadata=True, securityStatus=True)
    assert info.id == "team/m1" and info.author == "team" and info.sha == pushed.master
    assert info.private is True and info.library_name == "transformers"
    assert info.pipeline_tag == "text-generation"
    assert {"pytorch", "transformers", "exbert", "license:mit", "dataset:WebText"} <= set(info.tags)
    card = info.card_data.to_dict()
    assert card["license"] == "mit" and card["datasets"] == ["WebText"]
    assert card["Training framework"] == ["PyTorch", "Transformers"]  # as written
    assert info.card_data.eval_results[0].dataset_name == "LAMBADA"
    assert {r.metric_type: r.metric_value for r in info.card_data.eval_results} == {
        "PPL": 35.13,
        "ACC": 45.99,
    }
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", *pushed.files}
    weights = siblings["weights/model.safetensors"]
    assert weights.size == len(pushed.files["weights/model.safetensors"])
    assert weights.lfs.sha256 == sha256(pushed.files["weights/model.safetensors"])
    assert siblings["config.json"].blob_id == git_blob_id(pushed.files["config.json"])
    assert info.security_repo_status == {"scansDone": False, "filesWithIssues": []}

    status, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    assert status == 201, task
    assert (await wait_task(hub, task["id"]))["status"] == "succeeded"
    info = await hf(api.model_info, "team/m1", securityStatus=True)
    security = info.security_repo_status
    assert security["scansDone"] is True and security["status"] == "unsafe"
    assert [(f["path"], f["level"]) for f in security["filesWithIssues"]] == [
        ("model.pkl", "unsafe")
    ]

    on_branch = await hf(api.model_info, "team/m1", revision="feature/x")
    assert on_branch.sha == pushed.branch and "extra.json" in {
        s.rfilename for s in on_branch.siblings
    }
    only = await hf(api.model_info, "team/m1", expand=["sha", "cardData"])
    assert only.sha == pushed.master and only.card_data is not None and only.siblings is None


async def test_listings_of_files_refs_commits_and_tree(hub, pushed, api):
    assert await hf(api.list_repo_files, "team/m1") == sorted([".gitattributes", *pushed.files])
    assert "extra.json" in await hf(api.list_repo_files, "team/m1", revision="feature/x")

    refs = await hf(api.list_repo_refs, "team/m1")
    assert {(b.name, b.ref, b.target_commit) for b in refs.branches} == {
        ("main", "refs/heads/main", pushed.master),  # the Hub's name of the default branch
        ("master", "refs/heads/master", pushed.master),
        ("feature/x", "refs/heads/feature/x", pushed.branch),
    }
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", pushed.master)]

    commits = await hf(api.list_repo_commits, "team/m1", revision="feature/x")
    assert [c.commit_id for c in commits[:2]] == [pushed.branch, pushed.master]
    assert [c.title for c in commits] == ["extra", "weights", "Initial commit"]
    assert commits[0].authors == ["Tester"]

    top = await hf(lambda: list(api.list_repo_tree("team/m1")))
    assert [(e.path, type(e).__name__) for e in top] == [
        (".gitattributes", "RepoFile"),
        ("README.md", "RepoFile"),
        ("config.json", "RepoFile"),
        ("model.pkl", "RepoFile"),
        ("weights", "RepoFolder"),
    ]
    inside = await hf(lambda: list(api.list_repo_tree("team/m1", "weights", expand=True)))
    (weights,) = inside
    assert weights.path == "weights/model.safetensors"
    assert weights.size == len(pushed.files["weights/model.safetensors"])
    assert weights.lfs.pointer_size > 100 and weights.last_commit.oid == pushed.master
    assert weights.last_commit.title == "weights" and weights.security.status == "unscanned"
    recursive = await hf(lambda: [e.path for e in api.list_repo_tree("team/m1", recursive=True)])
    assert "weights/model.safetensors" in recursive and "weights" in recursive

    infos = await hf(api.get_paths_info, "team/m1", ["config.json", "weights", "nope"])
    assert [(type(i).__name__, i.path) for i in infos] == [
        ("RepoFile", "config.json"),
        ("RepoFolder", "weights"),
    ]
    assert await hf(api.file_exists, "team/m1", "config.json") is True
    assert await hf(api.file_exists, "team/m1", "nope.json") is False
    assert await hf(api.file_exists, "team/m1", "extra.json", revision="feature/x") is True


async def test_lists_page_with_link_headers(hub, pushed):
    url = f"{hub.base}/api/models/team/m1/tree/main?recursive=true&limit=2"
    seen = []
    while url:
        async with hub.session.get(url, headers=bearer(hub)) as resp:
            assert resp.status == 200
            seen += [e["path"] for e in await resp.json()]
            link = resp.headers.get("Link")
        url = re.fullmatch(r'<(.+)>; rel="next"', link).group(1) if link else None
    assert seen == sorted([".gitattributes", "weights", *pushed.files])
    url = f"{hub.base}/api/models/team/m1/commits/feature%2Fx?limit=1"
    async with hub.session.get(url, headers=bearer(hub)) as resp:
        assert [c["id"] for c in await resp.json()] == [pushed.branch]
        assert "cursor=1" in resp.headers["Link"] and "feature%2Fx" in resp.headers["Link"]


async def test_list_models_by_search_and_author(hub, api):
    await hub.space("team")
    await hub.space("lab")
    for space, model in (("team", "alpha"), ("team", "beta"), ("lab", "alpha-2")):
        await hub.model(space, model, visibility="public")
    found = await hf(lambda: [m.id for m in api.list_models(search="alpha")])
    assert sorted(found) == ["lab/alpha-2", "team/alpha"]
    found = await hf(lambda: [m.id for m in api.list_models(author="team")])
    assert sorted(found) == ["team/alpha", "team/beta"]
    found = await hf(lambda: [m.id for m in api.list_models(search="alpha", author="lab")])
    assert found == ["lab/alpha-2"]
    assert len(await hf(lambda: list(api.list_models(limit=2)))) == 2
    anonymous = HfApi(endpoint=hub.base, token=False)
    assert len(await hf(lambda: list(anonymous.list_models()))) == 3
    await hub.model("team", "hidden")
    assert "team/hidden" not in await hf(lambda: [m.id for m in anonymous.list_models()])


@pytest.mark.parametrize("who", ["bob", "nobody"])
async def test_what_a_caller_may_not_see_is_a_missing_repository(hub, pushed, tmp_path, who):
    await hub.user("bob")
    token = hub.keys["bob"] if who == "bob" else False
    client = HfApi(endpoint=hub.base, token=token)
    with pytest.raises(RepositoryNotFoundError):
        await hf(client.model_info, "team/m1")
    with pytest.raises(RepositoryNotFoundError):
        await hf(client.list_repo_files, "team/m1")
    with pytest.raises(RepositoryNotFoundError):
        await hf(
            hf_hub_download,
            "team/m1",
            "config.json",
            endpoint=hub.base,
            token=token,
            cache_dir=tmp_path / "c",
        )


async def test_a_repository_that_is_not_there_is_missing_for_the_admin_too(hub, api):
    with pytest.raises(RepositoryNotFoundError):
        await hf(api.model_info, "team/nope")


async def test_a_visitor_sees_the_card_of_a_gated_repository_but_no_files(hub, pushed, tmp_path):
    await hub.user("viv")
    status, _ = await hub.call(
        "PUT", "/api/v1/models/team/m1/members/viv", json={"role": "visitor"}
    )
    assert status == 200
    visitor = HfApi(endpoint=hub.base, token=hub.keys["viv"])
    info = await hf(visitor.model_info, "team/m1")
    assert info.gated == "manual" and info.siblings is None and info.card_data is not None
    with pytest.raises(GatedRepoError):
        await hf(
            hf_hub_download,
            "team/m1",
            "config.json",
            endpoint=hub.base,
            token=hub.keys["viv"],
            cache_dir=tmp_path / "v",
        )


async def test_a_wrong_key_is_refused_not_hidden(hub, pushed):
    with pytest.raises(HfHubHTTPError) as refused:
        await hf(HfApi(endpoint=hub.base, token="not-a-key").model_info, "team/m1")
    assert refused.value.response.status_code == 401
    assert not isinstance(refused.value, RepositoryNotFoundError)
    assert "Invalid credentials" in str(refused.value)


async def test_a_missing_revision_or_file_is_told_as_such(hub, pushed, api, tmp_path):
    with pytest.raises(RevisionNotFoundError):
        await hf(api.model_info, "team/m1", revision="nope")
    with pytest.raises(RemoteEntryNotFoundError):
        await hf(
            hf_hub_download,
            "team/m1",
            "nope.json",
            endpoint=hub.base,
            token=hub.admin_key,
            cache_dir=tmp_path / "a",
        )


class CuttingProxy:
    """A TCP proxy in front of the server that breaks the first download halfway.

    It keeps what clients sent and what they got, so the test can see the Range request
    and the server's 206 answer to it.
    """

    def __init__(self, port: int, cut_after: int) -> None:
        self.port = port
        self.cut_after = cut_after
        self.cut = False
        self.sent: list[bytearray] = []
        self.received: list[bytearray] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        sent, received = bytearray(), bytearray()
        self.sent.append(sent)
        self.received.append(received)

        async def upstream() -> None:
            while data := await reader.read(65536):
                sent.extend(data)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream() -> None:
            counted = 0
            while data := await up_reader.read(65536):
                if not self.cut and b"GET /team/m1/resolve/" in sent:
                    counted += len(data)
                    if counted > self.cut_after:
                        self.cut = True
                        writer.write(data[: len(data) - (counted - self.cut_after)])
                        break
                received.extend(data)
                writer.write(data)
                await writer.drain()
            writer.close()
            up_writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


async def test_a_broken_download_resumes_with_a_range_request(hub, model_repo, tmp_path):
    if on_s3(hub):
        pytest.skip("on a bucket the bytes come from the store, not through the cutting proxy")
    await git("lfs", "install", "--skip-repo")
    # The client writes what it received in pieces of 10 MiB: cut after more than one.
    data = os.urandom(24 * MIB)
    await push(tmp_path / "work", {"big.bin": data}, "big", clone=hub.remote("team", "m1"))
    proxy = CuttingProxy(hub.server.port, cut_after=16 * MIB)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        path = await hf(
            hf_hub_download,
            "team/m1",
            "big.bin",
            endpoint=endpoint,
            token=hub.admin_key,
            cache_dir=tmp_path / "cache",
        )
    finally:
        server.close()
    assert proxy.cut
    assert Path(path).read_bytes() == data
    requests = b"".join(proxy.sent).decode(errors="replace")
    ranges = [int(n) for n in re.findall(r"(?im)^range: bytes=(\d+)-\r$", requests)]
    assert len(ranges) == 1 and 0 < ranges[0] <= 16 * MIB
    answers = b"".join(proxy.received)
    assert f"Content-Range: bytes {ranges[0]}-{len(data) - 1}/{len(data)}".encode() in answers
    assert b"HTTP/1.1 206 Partial Content" in answers


OFFLINE = """
import json
from huggingface_hub import hf_hub_download, snapshot_download
config = hf_hub_download("team/m1", "config.json")
folder = snapshot_download("team/m1", revision="feature/x")
print(json.dumps({"config": open(config).read(), "folder": folder}))
"""


async def test_offline_mode_serves_from_the_cache(hub, pushed, hf_home):
    await hf(
        snapshot_download,
        "team/m1",
        revision="feature/x",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=hf_home / "hub",
    )
    await hf(
        hf_hub_download,
        "team/m1",
        "config.json",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=hf_home / "hub",
    )
    endpoint = hub.base
    await hub.server.close()  # the server is gone: only the cache can answer
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": hub.admin_key,
        "HF_HUB_OFFLINE": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OFFLINE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    answer = json.loads(out.decode().strip().splitlines()[-1])
    assert answer["config"] == pushed.files["config.json"].decode()
    assert Path(answer["folder"]).name == pushed.branch
    assert (Path(answer["folder"]) / "extra.json").read_text() == "{}\n"

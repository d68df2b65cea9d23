"""The mirror against the Hub's own answers: a recorded-shape stand-in for huggingface.co.

No upstream that someone else wrote is reachable from these machines, so `HubShapes`
answers as huggingface.co does, in the shapes huggingface_hub's own client code reads:
hf_api.py's `ModelInfo`/`RepoSibling` (`siblings` with `rfilename` only unless `blobs=true`,
`lfs` with `sha256`, `size` and `pointerSize`; `expand` keeps only what it names),
`list_repo_tree`/`RepoFile` (`lfs.oid`, `xetHash`, pages linked by a `Link: <…>; rel="next"`
header), file_download.py's `get_hf_file_metadata` (`X-Repo-Commit`, `X-Linked-Etag`,
`X-Linked-Size`, `ETag`; LFS content redirected to a CDN on another host that refuses an
`Authorization` header beside its signature, Xet content with `X-Xet-Hash` and a `Link`
rel="xet-auth", regular files redirected to a relative location, which huggingface_hub
follows on the Hub's own host: here `/api/resolve-cache/…`) and
hf_raise_for_status's `X-Error-Code`/`X-Error-Message` on 401, 403 (gated) and 404. It is a
stand-in for the real Hub, not a mock of any part of amphub: the mirror is a real amphub
server, and the real huggingface_hub reads what it mirrored.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url, snapshot_download
from huggingface_hub.errors import GatedRepoError

from tests.conftest import Hub, git, wait_task
from tests.test_hf_download import git_blob_id, hf, hf_home, safetensors, sha256  # noqa: F401

COMMIT = "3f1b9c0e5a7d2e4f6b8a0c1d3e5f7a9b1c2d4e6f"
TOKEN = "hf_shapes_token"
MIB = 1024 * 1024
# The Hub sends 1000 entries a tree page; two make this small tree span several pages.
TREE_PAGE = 2


@dataclass
class HubFile:
    """A file of the stand-in's repo, kept as the Hub keeps it: in git, in LFS, or in Xet."""

    path: str
    data: bytes
    storage: str = "git"

    @property
    def pointer(self) -> bytes:
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            sha256(self.data).encode(),
            len(self.data),
        )

    @property
    def blob_id(self) -> str:
        return git_blob_id(self.data if self.storage == "git" else self.pointer)

    @property
    def xet_hash(self) -> str:
        return hashlib.sha256(b"xet" + self.data).hexdigest()  # a Merkle hash in the Hub

    def lfs(self, oid_key: str) -> dict[str, Any] | None:
        if self.storage == "git":
            return None
        return {
            oid_key: sha256(self.data),
            "size": len(self.data),
            "pointerSize": len(self.pointer),
        }


FILES = [
    HubFile("README.md", b"---\nlicense: mit\nlibrary_name: transformers\n---\n# gpt\n"),
    HubFile("config.json", b'{"model_type": "gpt2"}\n'),
    HubFile("nested/tokenizer_config.json", b'{"padding_side": "left"}\n'),
    # Over 16 MiB and in git, as on the Hub for a repo made before its LFS rules.
    HubFile("vocab.txt", b"".join(b"token%08d\n" % i for i in range(17 * MIB // 14 + 1))),
    HubFile("model.safetensors", safetensors(MIB), "lfs"),
    HubFile("extra.safetensors", safetensors(MIB // 2), "xet"),
]


def hub_error(status: int, code: str | None, message: str) -> web.Response:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return web.json_response({"error": message}, status=status, headers=headers)


@dataclass
class HubShapes:
    """huggingface.co for three repos: `acme/gpt` (private: the token reads it; its model
    info names files only, as a server without `blobs` does, when `names_only`),
    `acme/gated` (gated: 403), anything else (404)."""

    cdn: str = ""
    names_only: bool = False
    asked: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def refusal(self, request: web.Request) -> web.Response | None:
        self.asked.append((request.method, request.path_qs, dict(request.headers)))
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        auth = request.headers.get("Authorization")
        if auth not in (None, f"Bearer {TOKEN}"):
            return hub_error(401, None, "Invalid credentials in Authorization header")
        if repo == "acme/gated":
            return hub_error(
                403,
                "GatedRepo",
                f"Access to model {repo} is restricted and you are not in the authorized list."
                f" Visit https://huggingface.co/{repo} to ask for access.",
            )
        if repo != "acme/gpt" or auth is None:
            return hub_error(401 if auth is None else 404, "RepoNotFound", "Repository not found")
        rev = request.match_info.get("rev", "main")
        if rev not in ("main", COMMIT):
            return hub_error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return None

    async def model_info(self, request: web.Request) -> web.Response:
        if refused := self.refusal(request):
            return refused
        blobs = request.query.get("blobs") in ("true", "True", "1") and not self.names_only
        siblings = [
            {"rfilename": f.path, "blobId": f.blob_id, "size": len(f.data)}
            | ({"lfs": f.lfs("sha256")} if f.lfs("sha256") else {})
            if blobs
            else {"rfilename": f.path}
            for f in FILES
        ]
        info = {
            "_id": "65f1c0ffee0123456789abcd",
            "id": "acme/gpt",
            "modelId": "acme/gpt",
            "author": "acme",
            "sha": COMMIT,
            "lastModified": "2024-05-01T12:00:00.000Z",
            "createdAt": "2024-04-01T12:00:00.000Z",
            "private": True,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "library_name": "transformers",
            "tags": ["transformers", "safetensors", "license:mit"],
            "cardData": {"license": "mit", "library_name": "transformers"},
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(len(f.data) for f in FILES),
        }
        expand = request.query.getall("expand", []) + request.query.getall("expand[]", [])
        if expand:
            info = {"_id": info["_id"], "id": info["id"]} | {
                key: value for key, value in info.items() if key in expand
            }
        return web.json_response(info)

    async def tree(self, request: web.Request) -> web.Response:
        if refused := self.refusal(request):
            return refused
        entries: list[dict[str, Any]] = [
            {
                "type": "directory",
                "oid": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                "size": 0,
                "path": "nested",
            }
        ]
        for f in FILES:
            entry = {"type": "file", "oid": f.blob_id, "size": len(f.data), "path": f.path}
            if f.lfs("oid"):
                entry["lfs"] = f.lfs("oid")
            if f.storage == "xet":
                entry["xetHash"] = f.xet_hash
            entries.append(entry)
        cursor = request.query.get("cursor")
        start = json.loads(base64.b64decode(cursor))["offset"] if cursor else 0
        headers = {}
        if start + TREE_PAGE < len(entries):
            following = base64.b64encode(json.dumps({"offset": start + TREE_PAGE}).encode())
            url = request.url.with_query(
                recursive=request.query.get("recursive", "false"), cursor=following.decode()
            )
            headers["Link"] = f'<{url}>; rel="next"'
        return web.json_response(entries[start : start + TREE_PAGE], headers=headers)

    def file(self, request: web.Request) -> HubFile | None:
        return next((f for f in FILES if f.path == request.match_info["path"]), None)

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        if refused := self.refusal(request):
            return refused
        f = self.file(request)
        if f is None:
            return hub_error(404, "EntryNotFound", f"{request.match_info['path']} does not exist")
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{f.blob_id}"'}
        if f.storage == "git":  # a relative redirect, on the Hub's own host
            location = (
                f"/api/resolve-cache/models/acme/gpt/{COMMIT}/{f.path}?etag=%22{f.blob_id}%22"
            )
            return web.Response(status=307, headers={**headers, "Location": location})
        headers |= {"X-Linked-Etag": f'"{sha256(f.data)}"', "X-Linked-Size": str(len(f.data))}
        where = "repos/ab/cd" if f.storage == "lfs" else "xet-bridge-us/0123abcd"
        headers["Location"] = (
            f"{self.cdn}/{where}/{sha256(f.data)}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Expires=3600&X-Amz-Signature=5f4e3d2c1b0a&X-Id=GetObject"
        )
        if f.storage == "xet":
            refresh = f"{request.url.origin()}/api/models/acme/gpt/xet-read-token/{COMMIT}"
            headers |= {
                "X-Xet-Hash": f.xet_hash,
                "X-Xet-Refresh-Route": f"/api/models/acme/gpt/xet-read-token/{COMMIT}",
                "Link": f"<https://cas-server.xethub.hf.co/reconstructions/{f.xet_hash}>;"
                f' rel="xet-reconstruction-info", <{refresh}>; rel="xet-auth"',
            }
        return web.Response(status=302, headers=headers)

    async def resolve_cache(self, request: web.Request) -> web.Response:
        if refused := self.refusal(request):
            return refused
        f = self.file(request)
        assert f is not None
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{f.blob_id}"'}
        return web.Response(body=f.data, headers=headers, content_type="text/plain")

    async def cdn_object(self, request: web.Request) -> web.Response:
        """A signed CDN or Xet bridge URL: a second credential is refused, as S3 does."""
        self.asked.append((request.method, request.path_qs, dict(request.headers)))
        if "Authorization" in request.headers or "X-Amz-Signature" not in request.query:
            return web.Response(
                status=400,
                text="<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism"
                " allowed</Message></Error>",
                content_type="application/xml",
            )
        f = next(f for f in FILES if sha256(f.data) == request.match_info["oid"])
        return web.Response(body=f.data, headers={"ETag": f'"{sha256(f.data)}"'})


@pytest.fixture
async def shapes() -> AsyncIterator[tuple[HubShapes, str]]:
    stand_in = HubShapes()
    cdn = web.Application()
    cdn.router.add_get("/{where:repos/ab/cd|xet-bridge-us/0123abcd}/{oid}", stand_in.cdn_object)
    cdn_server = TestServer(cdn, host="127.0.0.1")
    await cdn_server.start_server()
    stand_in.cdn = str(cdn_server.make_url("")).rstrip("/")
    app = web.Application()
    repo = "{org}/{name}"
    app.router.add_get(f"/api/models/{repo}", stand_in.model_info)
    app.router.add_get(f"/api/models/{repo}/revision/{{rev}}", stand_in.model_info)
    app.router.add_get(f"/api/models/{repo}/tree/{{rev}}", stand_in.tree)
    app.router.add_get(f"/{repo}/resolve/{{rev}}/{{path:.+}}", stand_in.resolve)
    app.router.add_get(
        f"/api/resolve-cache/models/{repo}/{{rev}}/{{path:.+}}", stand_in.resolve_cache
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield stand_in, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await cdn_server.close()


async def mirror(hub: Hub, repo: str, revision: str = "main", upstream: str = "hub") -> dict:
    status, task = await hub.call(
        "POST", f"/api/v1/upstreams/{upstream}/mirrors", json={"repo": repo, "revision": revision}
    )
    assert status == 202, task
    return await wait_task(hub, task["id"])


async def test_the_hubs_shapes_are_mirrored_and_served(hub, shapes, tmp_path):
    stand_in, url = shapes
    await hub.space("hf")
    body = {"name": "hub", "url": url, "space": "hf", "token": TOKEN}
    assert (await hub.call("POST", "/api/v1/upstreams", json=body))[0] == 201
    done = await mirror(hub, "acme/gpt")
    assert done["status"] == "succeeded", done
    # LFS and Xet content came from the CDN host, without the upstream's token.
    assert done["result"]["lfs_objects_fetched"] == 2
    cdn_asks = [headers for _, path, headers in stand_in.asked if "X-Amz-Signature" in path]
    assert len(cdn_asks) == 2 and not any("Authorization" in h for h in cdn_asks)
    info_asks = [(path, h) for _, path, h in stand_in.asked if path.startswith("/api/models")]
    assert info_asks[0][0] == "/api/models/acme/gpt/revision/main?blobs=true"
    assert info_asks[0][1]["Authorization"] == f"Bearer {TOKEN}"
    _, scans = await hub.call("GET", "/api/v1/tasks?kind=scan&model=hf/acme__gpt")
    assert (await wait_task(hub, scans["tasks"][0]["id"]))["status"] == "succeeded"
    folder = Path(
        await hf(
            snapshot_download,
            "hf/acme__gpt",
            endpoint=hub.base,
            token=hub.admin_key,
            cache_dir=tmp_path / "c",
        )
    )
    for f in FILES:
        assert (folder / f.path).read_bytes() == f.data, f.path
    # The large regular file is an LFS object here, as a Hub commit of it makes it.
    clone = tmp_path / "clone"
    await git("lfs", "install", "--skip-repo")
    await git("clone", "-q", hub.remote("hf", "acme__gpt"), str(clone))
    listed = (await git("lfs", "ls-files", "-n", cwd=clone)).stdout.split()
    assert sorted(listed) == ["extra.safetensors", "model.safetensors", "vocab.txt"]
    assert (clone / "vocab.txt").read_bytes() == FILES[3].data

    # What huggingface_hub sends to amphub (expand lists, blobs, securityStatus, a tree
    # listing with expand, paths-info's form, a HEAD with identity encoding) is taken.
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    expanded = await hf(api.model_info, "hf/acme__gpt", expand=["sha", "siblings"])
    assert expanded.sha and {s.rfilename for s in expanded.siblings} >= {"vocab.txt"}
    full = await hf(api.model_info, "hf/acme__gpt", files_metadata=True, securityStatus=True)
    assert {s.rfilename: s.size for s in full.siblings}["vocab.txt"] == len(FILES[3].data)
    tree = await hf(lambda: list(api.list_repo_tree("hf/acme__gpt", recursive=True, expand=True)))
    assert {"nested/tokenizer_config.json", "vocab.txt"} <= {e.path for e in tree}
    paths = await hf(api.get_paths_info, "hf/acme__gpt", ["config.json", "nested"], expand=True)
    assert [p.path for p in paths] == ["config.json", "nested"]
    assert await hf(api.file_exists, "hf/acme__gpt", "nested/tokenizer_config.json")

    # A revision the mirror lacks, here the upstream's commit id, asked for by one who may
    # create models in the mirror space: fetched and scanned while the call is held, then
    # its own commit, tagged mirror/<id>, is served under the id asked for.
    assert (await hf(api.model_info, "hf/acme__gpt", revision=COMMIT)).sha == COMMIT
    _, tasks = await hub.call("GET", "/api/v1/tasks?kind=mirror&model=hf/acme__gpt")
    at_commit = await wait_task(hub, tasks["tasks"][0]["id"])
    assert at_commit["status"] == "succeeded", at_commit
    _, scans = await hub.call("GET", "/api/v1/tasks?kind=scan&model=hf/acme__gpt")
    await wait_task(hub, scans["tasks"][0]["id"])
    pinned = await hf(
        snapshot_download,
        "hf/acme__gpt",
        revision=COMMIT,
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=tmp_path / "pinned",
    )
    assert Path(pinned).name == COMMIT
    assert (Path(pinned) / "nested/tokenizer_config.json").read_bytes() == FILES[2].data
    assert (await hf(api.model_info, "hf/acme__gpt", revision=COMMIT)).sha == COMMIT
    refs = (await git("ls-remote", hub.remote("hf", "acme__gpt"))).stdout
    assert f"refs/tags/mirror/{COMMIT}" in refs
    again = await mirror(hub, "acme/gpt", COMMIT)  # a commit does not change: not fetched
    assert again["result"]["commit"] == at_commit["result"]["commit"]
    # A revision the upstream lacks: its fetch fails once, is refused since, and the
    # revisions fetched before are still served.
    with pytest.raises(GatedRepoError, match="could not be fetched at v9: .*Invalid rev id"):
        await hf(api.model_info, "hf/acme__gpt", revision="v9")
    _, tasks = await hub.call("GET", "/api/v1/tasks?kind=mirror&model=hf/acme__gpt")
    assert (await wait_task(hub, tasks["tasks"][0]["id"]))["status"] == "failed"
    for _ in range(2):
        with pytest.raises(GatedRepoError, match="could not be fetched at v9: .*Invalid rev id"):
            await hf(api.model_info, "hf/acme__gpt", revision="v9")
    _, tasks = await hub.call("GET", "/api/v1/tasks?kind=mirror&model=hf/acme__gpt")
    assert len(tasks["tasks"]) == 4
    assert (await hf(api.model_info, "hf/acme__gpt")).sha

    # The upstream's refusals end the task with the Hub's own sentence.
    refusals = {
        "acme/gated": "answered 403 for /api/models/acme/gated/revision/main: Access to model",
        "acme/nothing": "answered 404 for /api/models/acme/nothing/revision/main: Repository",
    }
    for repo, sentence in refusals.items():
        failed = await mirror(hub, repo)
        assert failed["status"] == "failed" and sentence in failed["message"], failed


async def test_an_upstream_naming_files_only_is_read_through_its_paged_tree(hub, shapes):
    stand_in, url = shapes
    # The stand-in's answers are read by huggingface_hub itself as the Hub's are.
    direct = HfApi(endpoint=url, token=TOKEN)
    info = await hf(direct.model_info, "acme/gpt", files_metadata=True)
    lfs = {f.path: sha256(f.data) for f in FILES if f.storage != "git"}
    assert {s.rfilename: s.lfs.sha256 for s in info.siblings if s.lfs} == lfs
    tree = await hf(lambda: list(direct.list_repo_tree("acme/gpt", recursive=True)))
    assert {e.path: e.xet_hash for e in tree if getattr(e, "xet_hash", None)} == {
        "extra.safetensors": FILES[5].xet_hash
    }
    xet = await hf(get_hf_file_metadata, hf_hub_url("acme/gpt", FILES[5].path, endpoint=url), TOKEN)
    assert (xet.commit_hash, xet.size, xet.etag) == (COMMIT, len(FILES[5].data), lfs[FILES[5].path])
    assert xet.xet_file_data.file_hash == FILES[5].xet_hash and xet.location.startswith(
        stand_in.cdn
    )
    regular = await hf(
        get_hf_file_metadata, hf_hub_url("acme/gpt", "config.json", endpoint=url), TOKEN
    )
    assert (regular.commit_hash, regular.etag) == (COMMIT, FILES[1].blob_id)
    with pytest.raises(GatedRepoError):
        await hf(direct.model_info, "acme/gated")
    stand_in.asked.clear()
    stand_in.names_only = True
    await hub.space("hf")
    body = {"name": "hub", "url": url, "space": "hf", "token": TOKEN}
    assert (await hub.call("POST", "/api/v1/upstreams", json=body))[0] == 201
    done = await mirror(hub, "acme/gpt")
    assert done["status"] == "succeeded", done
    pages = [path for _, path, _ in stand_in.asked if "/tree/" in path]
    assert len(pages) == 4 and all(COMMIT in path for path in pages)
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    _, scans = await hub.call("GET", "/api/v1/tasks?kind=scan&model=hf/acme__gpt")
    await wait_task(hub, scans["tasks"][0]["id"])
    info = await hf(api.model_info, "hf/acme__gpt", files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert {f.path: len(f.data) for f in FILES}.items() <= sizes.items()
    # A wrong token is the upstream's 401, said as it says it.
    body = {"name": "other", "url": url, "space": "hf", "token": "hf_wrong"}
    assert (await hub.call("POST", "/api/v1/upstreams", json=body))[0] == 201
    failed = await mirror(hub, "acme/other", upstream="other")
    assert "answered 401" in failed["message"] and "Invalid credentials" in failed["message"]

"""Pull-through mirrors of an upstream hub: two real amphub servers, huggingface_hub and git.

The upstream is a second amphub (it speaks the Hub's API); `hub` is the mirror, with a
space `hf` as the mirror space of the upstream `up`. The upstream repo `acme/gpt` is the
mirror's model `hf/acme__gpt`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pickle
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

from tests.conftest import Hub, ServerProcess, git, push, running_hub, start_hub, wait_task
from tests.test_hf_download import Evil, hf, hf_home, safetensors  # noqa: F401
from tests.test_hf_transformers import CONFIG

MIB = 1024 * 1024
LOAD = """
from transformers import AutoConfig
print(AutoConfig.from_pretrained("hf/acme__gpt").hidden_size)
"""
FILES = {
    "README.md": b"---\nlicense: mit\n---\n# gpt\n",
    "config.json": json.dumps(CONFIG).encode(),
    "model.safetensors": safetensors(MIB),
}


@dataclass
class Mirror:
    """The mirror hub and the upstream hub it mirrors."""

    hub: Hub
    upstream: Hub
    work: Path


async def register(hub: Hub, upstream: Hub, **extra: object) -> dict:
    body = {"name": "up", "url": upstream.base, "space": "hf", "token": upstream.admin_key}
    status, answer = await hub.call("POST", "/api/v1/upstreams", json={**body, **extra})
    assert status == 201, answer
    return answer


@pytest.fixture
async def mirror(hub: Hub, tmp_path: Path) -> AsyncIterator[Mirror]:
    await git("lfs", "install", "--skip-repo")
    server, key = await start_hub(tmp_path / "upstream")
    async with aiohttp.ClientSession() as session:
        upstream = Hub(server, session, key, tmp_path / "upstream")
        await upstream.space_and_model("acme", "gpt")
        work = tmp_path / "upstream-work"
        await push(work, FILES, "weights", clone=upstream.remote("acme", "gpt"))
        await hub.space("hf")
        await register(hub, upstream)
        yield Mirror(hub, upstream, work)
    await server.close()


async def mirror_repo(hub: Hub, repo: str, user: str = "admin") -> dict:
    """Mirror `repo` explicitly; the finished mirror task."""
    status, task = await hub.call(
        "POST", "/api/v1/upstreams/up/mirrors", user=user, json={"repo": repo}
    )
    assert status == 202, task
    assert task["kind"] == "mirror"
    return await wait_task(hub, task["id"], user=user)


async def scanned(hub: Hub, model: str) -> dict:
    """The model's scan, once done."""
    status, tasks = await hub.call("GET", f"/api/v1/tasks?kind=scan&model=hf/{model}")
    assert status == 200, tasks
    return await wait_task(hub, tasks["tasks"][0]["id"])


async def test_upstreams_are_registered_listed_and_removed_by_administrators(mirror):
    hub = mirror.hub
    status, listed = await hub.call("GET", "/api/v1/upstreams")
    assert status == 200
    assert listed["upstreams"] == [
        {
            "name": "up",
            "url": mirror.upstream.base,
            "space": "hf",
            "token": True,  # that it has one, never the token
            "visibility": "internal",
            "created_at": listed["upstreams"][0]["created_at"],
        }
    ]
    assert mirror.upstream.admin_key not in str(listed)
    await hub.user("bob")
    status, _ = await hub.call("GET", "/api/v1/upstreams", user="bob")
    assert status == 403
    body = {"name": "other", "url": mirror.upstream.base, "space": "nope"}
    status, answer = await hub.call("POST", "/api/v1/upstreams", json=body)
    assert status == 400 and "no space nope" in answer["error"]["message"]
    status, answer = await hub.call("POST", "/api/v1/upstreams", json={**body, "space": "hf"})
    assert status == 201 and answer["token"] is False
    status, _ = await hub.call("DELETE", "/api/v1/upstreams/other")
    assert status == 204
    status, _ = await hub.call("DELETE", "/api/v1/upstreams/other")
    assert status == 404
    status, answer = await hub.call(
        "POST", "/api/v1/upstreams", json={**body, "space": "hf", "visibility": "secret"}
    )
    assert status == 400 and "visibility must be one of" in answer["error"]["message"]


async def test_a_private_upstreams_mirrors_are_read_by_those_the_roles_let(hub, tmp_path):
    await git("lfs", "install", "--skip-repo")
    server, key = await start_hub(tmp_path / "upstream")
    try:
        async with aiohttp.ClientSession() as session:
            upstream = Hub(server, session, key, tmp_path / "upstream")
            await upstream.space_and_model("acme", "gpt")
            await push(tmp_path / "w", FILES, "weights", clone=upstream.remote("acme", "gpt"))
            await hub.space("hf")
            assert (await register(hub, upstream, visibility="private"))["visibility"] == "private"
            assert (await mirror_repo(hub, "acme/gpt"))["status"] == "succeeded"
            await scanned(hub, "acme__gpt")
    finally:
        await server.close()
    _, model = await hub.call("GET", "/api/v1/models/hf/acme__gpt")
    assert model["visibility"] == "private"
    await hub.user("eve")
    eve = HfApi(endpoint=hub.base, token=hub.keys["eve"])
    with pytest.raises(HfHubHTTPError) as hidden:
        await hf(eve.model_info, "hf/acme__gpt")
    assert hidden.value.response.status_code == 404
    status, _ = await hub.call(
        "PUT", "/api/v1/models/hf/acme__gpt/members/eve", json={"role": "user"}
    )
    assert status == 200
    assert (await hf(eve.model_info, "hf/acme__gpt")).id == "hf/acme__gpt"


async def test_explicit_mirror_is_served_scanned_and_survives_the_upstream(mirror, tmp_path):
    hub = mirror.hub
    done = await mirror_repo(hub, "acme/gpt")
    assert done["status"] == "succeeded", done
    assert done["result"]["lfs_objects_fetched"] == 1
    assert done["result"]["lfs_bytes_fetched"] == len(FILES["model.safetensors"])
    # Scanned as it came (its bytes hashed on the way in), the commit's scan reads it no more.
    assert done["result"]["lfs_objects_scanned"] == 1
    assert (await scanned(hub, "acme__gpt"))["status"] == "succeeded"
    folder = await hf(
        snapshot_download,
        "hf/acme__gpt",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=tmp_path / "c1",
    )
    got = {p.name: p.read_bytes() for p in Path(folder).iterdir()}
    assert got.pop(".gitattributes") == (mirror.work / ".gitattributes").read_bytes()
    assert got == FILES
    # git clone works on the mirror too, LFS content included.
    clone = tmp_path / "clone"
    await git("clone", "-q", hub.remote("hf", "acme__gpt"), str(clone))
    assert (clone / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    await git("fsck", "--strict", cwd=clone)
    # Mirrored again: what the store holds already (by sha256) is not fetched again.
    again = await mirror_repo(hub, "acme/gpt")
    assert again["status"] == "succeeded", again
    assert again["result"]["lfs_objects_fetched"] == 0
    await scanned(hub, "acme__gpt")
    # Served from the mirror with the upstream gone.
    assert mirror.upstream.server is not None
    await mirror.upstream.server.close()
    path = await hf(
        hf_hub_download,
        "hf/acme__gpt",
        "model.safetensors",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=tmp_path / "c2",
    )
    assert Path(path).read_bytes() == FILES["model.safetensors"]


async def test_first_use_fetches_scans_then_serves(mirror, tmp_path):
    hub = mirror.hub
    # A user's script with only HF_ENDPOINT set gets the model on its first run: Hub API
    # calls are held while it is fetched and scanned, and file downloads answered 503
    # are asked again after Retry-After by hf_hub_download (under from_pretrained).
    env = {name: value for name, value in os.environ.items() if not name.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.base,
        HF_TOKEN=hub.admin_key,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TRANSFORMERS_VERBOSITY="error",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOAD,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == [str(CONFIG["hidden_size"])]
    # What a download sees while a model is fetched (it is not held), and what a held Hub
    # API call gets once the fetch failed.
    auth = {"Authorization": f"Bearer {hub.admin_key}"}
    url = f"{hub.base}/hf/acme__missing/resolve/main/config.json"
    async with hub.session.get(url, headers=auth) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "2"
        said = await resp.text()
    assert "is being fetched from upstream up" in said
    assert "huggingface_hub retries by itself" in said
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    with pytest.raises(GatedRepoError, match="could not be fetched: the upstream answered 404"):
        await hf(api.model_info, "hf/acme__missing")
    # Asked for by many at once, a model is fetched once.
    asked = [hub.call("GET", "/api/models/hf/acme__twice") for _ in range(4)]
    assert {status for status, _ in await asyncio.gather(*asked)} <= {503, 403}
    status, tasks = await hub.call("GET", "/api/v1/tasks?kind=mirror&model=hf/acme__twice")
    assert len(tasks["tasks"]) == 1
    # A user who may not create models in the mirror space starts nothing.
    await hub.user("eve")
    eve = HfApi(endpoint=hub.base, token=hub.keys["eve"])
    with pytest.raises(HfHubHTTPError) as hidden:
        await hf(eve.model_info, "hf/acme__other")
    assert hidden.value.response.status_code == 404
    status, tasks = await hub.call("GET", "/api/v1/tasks?kind=mirror")
    assert sorted(t["model"] for t in tasks["tasks"]) == [
        "hf/acme__gpt",
        "hf/acme__missing",
        "hf/acme__twice",
    ]
    # snapshot_download does not retry its first call (repo_info): held until the model is
    # fetched and scanned, that call answers with the model.
    await mirror.upstream.model("acme", "tiny")
    first = partial(
        snapshot_download,
        "hf/acme__tiny",
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=tmp_path / "first",
    )
    assert (Path(await hf(first)) / "README.md").is_file()
    # Asked for at an upstream commit id it lacks: fetched at that commit, which the tag
    # mirror/<id> names here (its own id differs).
    upstream_api = HfApi(endpoint=mirror.upstream.base, token=mirror.upstream.admin_key)
    commit = (await hf(upstream_api.model_info, "acme/tiny")).sha
    at_commit = partial(
        snapshot_download,
        "hf/acme__tiny",
        revision=commit,
        endpoint=hub.base,
        token=hub.admin_key,
        cache_dir=tmp_path / "at-commit",
    )
    folder = Path(await hf(at_commit))  # its tree listing retries the 503s by itself
    assert folder.name == commit and (folder / "README.md").is_file()
    # git hands out every tip, so it waits for each one's scan: master's first commit too.
    remote = hub.remote("hf", "acme__tiny")
    first = await git("ls-remote", remote, check=False)
    if first.returncode:
        assert "is being scanned" in first.stderr, first.stderr
        _, tasks = await hub.call("GET", "/api/v1/tasks?kind=scan&model=hf/acme__tiny")
        for task in tasks["tasks"]:
            await wait_task(hub, task["id"])
    refs = (await git("ls-remote", remote)).stdout
    assert f"refs/tags/mirror/{commit}" in refs  # git clone has it too


async def test_unsafe_upstream_model_is_fetched_scanned_and_refused(mirror, tmp_path):
    hub, upstream = mirror.hub, mirror.upstream
    await upstream.model("acme", "bad")
    evil = {"model.pkl": pickle.dumps(Evil(), protocol=2), "config.json": b"{}\n"}
    await push(tmp_path / "bad", evil, "evil", clone=upstream.remote("acme", "bad"))
    done = await mirror_repo(hub, "acme/bad")
    assert done["status"] == "succeeded", done
    assert done["result"]["lfs_objects_scanned"] == 1  # the pickle, judged as it came
    assert (await scanned(hub, "acme__bad"))["result"]["summary"]["status"] == "unsafe"
    with pytest.raises(GatedRepoError) as refused:
        await hf(
            hf_hub_download,
            "hf/acme__bad",
            "model.pkl",
            endpoint=hub.base,
            token=hub.admin_key,
            cache_dir=tmp_path / "c",
        )
    assert refused.value.response.status_code == 403
    message = str(refused.value)
    assert "is not served: its scan found it unsafe" in message and "model.pkl" in message
    # git, LFS and the files API (the web's downloads) are held back by the same verdict.
    clone = await git("clone", hub.remote("hf", "acme__bad"), str(tmp_path / "c2"), check=False)
    assert clone.returncode and "its scan found it unsafe" in clone.stderr, clone.stderr
    status, answer = await hub.call("GET", "/api/v1/models/hf/acme__bad/blob/master/model.pkl")
    assert status == 403 and "its scan found it unsafe" in answer["error"]["message"]
    batch = {"operation": "download", "objects": [{"oid": "0" * 64, "size": 1}]}
    url = f"{hub.base}/hf/acme__bad.git/info/lfs/objects/batch"
    lfs = {"Accept": "application/vnd.git-lfs+json", "Authorization": f"Bearer {hub.admin_key}"}
    async with hub.session.post(url, json=batch, headers=lfs) as resp:
        assert resp.status == 403 and "its scan found it unsafe" in await resp.text()


async def test_the_served_commits_own_scan_decides_not_the_latest_one(mirror, tmp_path):
    hub, upstream = mirror.hub, mirror.upstream
    await upstream.model("acme", "bad")
    evil = {"model.pkl": pickle.dumps(Evil(), protocol=2), "config.json": b"{}\n"}
    await push(tmp_path / "bad", evil, "evil", clone=upstream.remote("acme", "bad"))
    assert (await mirror_repo(hub, "acme/bad"))["status"] == "succeeded"
    assert (await scanned(hub, "acme__bad"))["result"]["summary"]["status"] == "unsafe"
    # A clean branch of the mirrored model, scanned after master: the latest scan is safe.
    # (Pushed, not cloned: git reads of a model with an unsafe tip are refused.)
    clean = tmp_path / "clean"
    await git("init", "-q", "-b", "clean", str(clean))
    (clean / "config.json").write_text("{}\n")
    await git("add", "config.json", cwd=clean)
    await git("commit", "-qm", "clean", cwd=clean)
    await git("remote", "add", "origin", hub.remote("hf", "acme__bad"), cwd=clean)
    await git("push", "-q", "origin", "clean", cwd=clean)
    status, task = await hub.call(
        "POST", "/api/v1/models/hf/acme__bad/scans", json={"ref": "clean"}
    )
    assert status == 201, task
    assert (await wait_task(hub, task["id"]))["result"]["summary"]["status"] == "safe"

    def download(revision: str) -> str:
        return hf_hub_download(
            "hf/acme__bad",
            "config.json",
            revision=revision,
            endpoint=hub.base,
            token=hub.admin_key,
            cache_dir=tmp_path / revision,
        )

    assert Path(await asyncio.to_thread(download, "clean")).read_text() == "{}\n"
    with pytest.raises(GatedRepoError) as refused:
        await asyncio.to_thread(download, "main")
    assert "is not served: its scan found it unsafe" in str(refused.value)
    # A commit no scan has seen: the first ask queues its scan and is told to come back.
    (clean / "config.json").write_text('{"v": 2}\n')
    await git("commit", "-qam", "v2", cwd=clean)
    await git("push", "-q", "origin", "clean", cwd=clean)
    head = (await git("rev-parse", "HEAD", cwd=clean)).stdout.strip()
    url = f"{hub.base}/hf/acme__bad/resolve/clean/config.json"
    auth = {"Authorization": f"Bearer {hub.admin_key}"}
    async with hub.session.get(url, headers=auth) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"]
        assert head[:12] in await resp.text()
    _, tasks = await hub.call("GET", "/api/v1/tasks?kind=scan&model=hf/acme__bad")
    assert tasks["tasks"][0]["commit"] == head
    await wait_task(hub, tasks["tasks"][0]["id"])
    async with hub.session.get(url, headers=auth) as resp:
        assert resp.status == 200 and await resp.read() == b'{"v": 2}\n'


@pytest.mark.parametrize("setting", ["warn", "block"])
async def test_suspicious_findings_warn_or_block_as_the_setting_says(tmp_path, setting):
    await git("lfs", "install", "--skip-repo")
    odd = {"model.safetensors": safetensors(MIB) + bytes(16)}  # bytes after the last tensor
    async with (
        running_hub(tmp_path / "upstream") as upstream,
        running_hub(tmp_path / "mirror", mirror_suspicious=setting) as hub,
    ):
        await upstream.space_and_model("acme", "gpt")
        await push(tmp_path / "w", odd, "weights", clone=upstream.remote("acme", "gpt"))
        await hub.space("hf")
        await register(hub, upstream)
        assert (await mirror_repo(hub, "acme/gpt"))["status"] == "succeeded"
        summary = (await scanned(hub, "acme__gpt"))["result"]["summary"]
        assert summary["status"] == "suspicious"
        download = partial(
            hf_hub_download,
            "hf/acme__gpt",
            "model.safetensors",
            endpoint=hub.base,
            token=hub.admin_key,
            cache_dir=tmp_path / "c",
        )
        if setting == "warn":
            assert Path(await hf(download)).read_bytes() == odd["model.safetensors"]
        else:
            with pytest.raises(GatedRepoError, match="its scan found it suspicious"):
                await hf(download)


async def test_a_mirror_that_does_not_fit_the_quota_is_refused_before_fetching(tmp_path):
    await git("lfs", "install", "--skip-repo")
    async with (
        running_hub(tmp_path / "upstream") as upstream,
        running_hub(tmp_path / "mirror", quota_unit=MIB) as hub,
    ):
        await upstream.space_and_model("acme", "gpt")
        await push(tmp_path / "w", FILES, "weights", clone=upstream.remote("acme", "gpt"))
        await hub.space("hf", quota=MIB)  # the safetensors file alone is a little more
        await register(hub, upstream)
        done = await mirror_repo(hub, "acme/gpt")
    assert done["status"] == "failed"
    assert "quota" in done["message"] and "hf" in done["message"], done["message"]
    assert not [p for p in (hub.data_dir / "lfs" / "objects").rglob("*") if p.is_file()]


class HoldingProxy:
    """The upstream behind a proxy that holds the first download of one file until released."""

    def __init__(self, upstream: str, held: str) -> None:
        self.upstream, self.held = upstream, held
        self.reached, self.release = asyncio.Event(), asyncio.Event()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith(self.held) and not self.reached.is_set():
            self.reached.set()
            await self.release.wait()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.upstream + request.path_qs, headers=headers) as upstream,
        ):
            body = await upstream.read()
            kept = ("Content-Type", "X-Error-Message", "X-Error-Code")
            return web.Response(
                status=upstream.status,
                body=body,
                headers={k: upstream.headers[k] for k in kept if k in upstream.headers},
            )


async def test_a_fetch_killed_mid_way_resumes_with_what_it_had_stored(tmp_path):
    await git("lfs", "install", "--skip-repo")
    files = {"a.safetensors": safetensors(MIB), "b.safetensors": safetensors(MIB)}
    async with running_hub(tmp_path / "upstream") as upstream:
        await upstream.space_and_model("acme", "gpt")
        await push(tmp_path / "w", files, "weights", clone=upstream.remote("acme", "gpt"))
        proxy = HoldingProxy(upstream.base, "/b.safetensors")
        app = web.Application()
        app.router.add_get("/{path:.*}", proxy.forward)
        front = TestServer(app, host="127.0.0.1")
        await front.start_server()
        server = ServerProcess(tmp_path / "mirror")
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                hub = Hub(None, session, server.key, server.data, url=server.url)
                await hub.space("hf")
                body = {
                    "name": "up",
                    "url": str(front.make_url("")).rstrip("/"),
                    "space": "hf",
                    "token": upstream.admin_key,
                }
                status, answer = await hub.call("POST", "/api/v1/upstreams", json=body)
                assert status == 201, answer
                status, task = await hub.call(
                    "POST", "/api/v1/upstreams/up/mirrors", json={"repo": "acme/gpt"}
                )
                assert status == 202, task
                await asyncio.wait_for(proxy.reached.wait(), 20)
                oid = hashlib.sha256(files["a.safetensors"]).hexdigest()
                stored = server.data / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
                for _ in range(400):  # fetched beside the held one
                    if stored.exists():
                        break
                    await asyncio.sleep(0.05)
                assert stored.exists()
                await server.kill()
                proxy.release.set()
                await server.start()
                done = await wait_task(hub, task["id"])
                assert done["status"] == "succeeded", done
                assert done["result"]["lfs_objects_fetched"] == 1  # b only
                await scanned(hub, "acme__gpt")  # git serves a mirror once it is scanned
                clone = tmp_path / "clone"
                await git("clone", "-q", hub.remote("hf", "acme__gpt"), str(clone))
                for name, data in files.items():
                    assert (clone / name).read_bytes() == data
        finally:
            await server.stop()
            await front.close()


@pytest.mark.parametrize(
    "sibling",
    [
        {"rfilename": "../escape.bin", "size": 4},
        {"rfilename": "w.bin", "size": 4, "lfs": {"sha256": "../../../../x" + "0" * 52, "size": 4}},
    ],
)
async def test_an_upstream_file_list_with_a_hostile_path_or_oid_ends_the_task(hub, sibling):
    async def info(request: web.Request) -> web.Response:
        return web.json_response({"sha": "a" * 40, "siblings": [sibling]})

    async def content(request: web.Request) -> web.Response:
        return web.Response(body=b"evil")

    app = web.Application()
    app.router.add_get("/api/models/acme/gpt/revision/main", info)
    app.router.add_get("/acme/gpt/resolve/{rest:.*}", content)
    fake = TestServer(app, host="127.0.0.1")
    await fake.start_server()
    try:
        await hub.space("hf")
        body = {"name": "up", "url": str(fake.make_url("")).rstrip("/"), "space": "hf"}
        assert (await hub.call("POST", "/api/v1/upstreams", json=body))[0] == 201
        done = await mirror_repo(hub, "acme/gpt")
    finally:
        await fake.close()
    assert done["status"] == "failed"
    assert done["message"].startswith("the upstream's file list is not the Hub's: invalid")
    assert not [p for p in hub.data_dir.rglob("*") if "escape" in p.name or p.name == "x"]

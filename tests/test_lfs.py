"""Git LFS with the real git-lfs client against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from amphub import db
from amphub.http import keys
from amphub.services.leases import claim
from amphub.services.models import delete_model
from amphub.services.objects import collect
from amphub.storage.local_objects import LocalObjectStore, put_group
from amphub.storage.objects import ObjectMismatch
from tests.conftest import Hub, StoredBytes, git, push, running_hub, wait_task

MIB = 1024 * 1024
LFS_JSON = "application/vnd.git-lfs+json"


async def lfs_clone(hub: Hub, tmp_path: Path, name: str, *, user: str = "admin", **env) -> Path:
    target = tmp_path / name
    await git("clone", "-q", hub.remote("team", "m1", user), str(target), **env)
    return target


def oid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def hub(tmp_path: Path, storage: dict, stored_bytes: StoredBytes) -> AsyncIterator[Hub]:
    """A hub on each object store in turn: the data dir's, then an S3 bucket."""
    async with running_hub(tmp_path / "data", **storage) as running:
        running.stored = stored_bytes
        yield running


def objects_of(hub: Hub) -> StoredBytes:
    return hub.stored or StoredBytes(hub.data_dir, {}, None)


def content(hub: Hub, data: bytes) -> bytes | None:
    """The stored bytes of the object `data` is, None if it is not stored."""
    return objects_of(hub).read(oid_of(data))


def stored(hub: Hub, data: bytes) -> Path:
    """The file of an object in the data dir's store."""
    oid = oid_of(data)
    return hub.data_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def auth(hub: Hub, user: str = "admin") -> dict[str, str]:
    key = hub.admin_key if user == "admin" else hub.keys[user]
    return {"Authorization": aiohttp.encode_basic_auth(user, key)}


async def batch(hub: Hub, operation: str, objects: list[dict], *, model="m1", user="admin"):
    url = f"{hub.base}/team/{model}.git/info/lfs/objects/batch"
    body = {"operation": operation, "transfers": ["basic"], "objects": objects}
    headers = {"Accept": LFS_JSON, "Content-Type": LFS_JSON}
    if user:
        headers.update(auth(hub, user))
    async with hub.session.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def put_object(hub: Hub, data: bytes, *, model="m1", user="admin", oid=None):
    oid = oid or oid_of(data)
    url = f"{hub.base}/team/{model}.git/info/lfs/objects/{oid}"
    async with hub.session.put(url, data=data, headers=auth(hub, user)) as resp:
        return resp.status, await resp.text()


def temp_files(hub: Hub) -> list[str]:
    """Scratch files, and objects being received (beside their final place)."""
    scratch = [str(p) for p in (hub.data_dir / "tmp").rglob("*") if p.is_file()]
    return scratch + objects_of(hub).half_received()


async def test_push_and_clone_lfs_files_of_several_sizes(hub, model_repo, tmp_path):
    await git("lfs", "install", "--skip-repo")
    work = await lfs_clone(hub, tmp_path, "w")
    files = {"empty.bin": b"", "one.bin": b"x", "weights/model.safetensors": os.urandom(5 * MIB)}
    await push(work, files, "add")
    for name in ("one.bin", "weights/model.safetensors"):
        assert content(hub, files[name]) == files[name]

    copy = await lfs_clone(hub, tmp_path, "copy")
    for name, data in files.items():
        assert (copy / name).read_bytes() == data
    await git("lfs", "fsck", cwd=copy)
    pointer = (await git("show", "HEAD:weights/model.safetensors", cwd=copy)).stdout
    assert pointer.startswith("version https://git-lfs.github.com/spec/v1")


async def test_objects_lost_or_damaged_on_disk_are_never_served_and_a_push_restores_them(
    hub, model_repo, tmp_path
):
    await git("lfs", "install", "--skip-repo")
    work = await lfs_clone(hub, tmp_path, "w")
    files = {"lost.bin": os.urandom(1000), "cut.bin": os.urandom(2000)}
    files["flipped.bin"] = os.urandom(5 * MIB)
    await push(work, files, "add")
    hub.stored.delete(oid_of(files["lost.bin"]))
    hub.stored.write(oid_of(files["cut.bin"]), files["cut.bin"][:100])
    flipped = bytes(b ^ 1 for b in files["flipped.bin"][:10]) + files["flipped.bin"][10:]
    hub.stored.write(oid_of(files["flipped.bin"]), flipped)

    objects = [{"oid": oid_of(files[name]), "size": len(files[name])} for name in files]
    _, answer, _ = await batch(hub, "download", objects)
    lost = answer["objects"][0]
    if hub.stored.s3 is None:
        assert lost["error"]["code"] == 404
        assert "lost this object" in lost["error"]["message"]
    else:  # offered by the bucket's own URL: the bucket says it has not got it
        async with hub.session.get(lost["actions"]["download"]["href"]) as resp:
            assert resp.status == 404
    blob = f"{hub.base}/api/v1/models/team/m1/blob/master/cut.bin"
    async with hub.session.get(blob, headers=auth(hub)) as resp:
        assert resp.status == 404  # a file of the wrong size is not served...
    assert hub.stored.quarantined(oid_of(files["cut.bin"]))  # ...but kept

    status, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    assert status == 201, task
    verdicts = (await wait_task(hub, task["id"]))["result"]["files"]
    assert verdicts["flipped.bin"]["status"] == "error"
    assert "damaged" in verdicts["flipped.bin"]["findings"][0]["message"]
    assert verdicts["lost.bin"]["status"] == verdicts["cut.bin"]["status"] == "error"
    assert content(hub, files["flipped.bin"]) is None  # found damaged by the scan: moved aside

    _, answer, _ = await batch(hub, "upload", objects)
    assert all("upload" in entry["actions"] for entry in answer["objects"])
    await git("lfs", "push", "--all", "origin", cwd=work)
    copy = await lfs_clone(hub, tmp_path, "copy")
    for name, data in files.items():
        assert (copy / name).read_bytes() == data
    await git("lfs", "fsck", cwd=copy)


async def test_an_object_damaged_without_changing_size_is_never_sent_whole(
    hub, model_repo, tmp_path, storage
):
    if storage:
        pytest.skip("a bucket's bytes go to the client by redirect; the store checks them")
    await git("lfs", "install", "--skip-repo")
    work = await lfs_clone(hub, tmp_path, "w")
    data = os.urandom(3 * MIB)
    await push(work, {"w.bin": data}, "add")
    path = stored(hub, data)
    damaged = data[: 2 * MIB] + bytes([data[2 * MIB] ^ 1]) + data[2 * MIB + 1 :]
    lfs_get = f"{hub.base}/team/m1.git/info/lfs/objects/{oid_of(data)}"
    blob = f"{hub.base}/api/v1/models/team/m1/blob/master/w.bin"
    resolve = f"{hub.base}/team/m1/resolve/master/w.bin"
    for url in (lfs_get, blob, resolve):
        path.write_bytes(damaged)
        async with hub.session.get(url, headers={**auth(hub), "Range": "bytes=0-99"}) as resp:
            assert resp.status == 206 and await resp.read() == damaged[:100]  # a range: as stored
        async with hub.session.get(url, headers=auth(hub)) as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):  # cut short: never the whole
                await resp.read()
        assert not path.exists(), url  # quarantined
        async with hub.session.get(url, headers=auth(hub)) as resp:
            assert resp.status == 404, url
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    async with hub.session.get(resolve, headers=auth(hub)) as resp:
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["ETag"] == f'"{oid_of(data)}"'


async def test_with_verify_downloads_off_an_object_goes_by_sendfile_unhashed(tmp_path):
    async with running_hub(tmp_path / "data", verify_downloads=0) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(MIB)
        status, _ = await put_object(hub, data)
        assert status == 200
        stored(hub, data).write_bytes(bytes([data[0] ^ 1]) + data[1:])
        url = f"{hub.base}/team/m1.git/info/lfs/objects/{oid_of(data)}"
        async with hub.session.get(url, headers=auth(hub)) as resp:
            assert resp.status == 200 and len(await resp.read()) == MIB  # the operator's choice


async def test_lfs_pull_include_fetches_only_what_is_asked(hub, model_repo, tmp_path):
    await git("lfs", "install", "--skip-repo")
    work = await lfs_clone(hub, tmp_path, "w")
    files = {"a.bin": os.urandom(1000), "b.bin": os.urandom(2000)}
    await push(work, files, "add")
    copy = await lfs_clone(hub, tmp_path, "copy", GIT_LFS_SKIP_SMUDGE="1")
    assert (copy / "a.bin").read_bytes().startswith(b"version https://git-lfs")
    await git("lfs", "pull", "--include", "a.bin", cwd=copy)
    assert (copy / "a.bin").read_bytes() == files["a.bin"]
    assert (copy / "b.bin").read_bytes().startswith(b"version https://git-lfs")


async def test_upload_with_wrong_hash_leaves_nothing(hub, model_repo):
    data = os.urandom(4096)
    wrong = oid_of(b"something else")
    status, body = await put_object(hub, data, oid=wrong)
    assert status == 422 and "does not match its oid" in body
    assert content(hub, data) is None and objects_of(hub).read(wrong) is None
    assert temp_files(hub) == []
    _, space = await hub.call("GET", "/api/v1/spaces/team")
    status, answer, _ = await batch(hub, "download", [{"oid": wrong, "size": 4096}])
    assert answer["objects"][0]["error"]["code"] == 404


async def test_upload_cut_off_halfway_leaves_nothing_even_after_restart(tmp_path):
    data_dir = tmp_path / "data"
    data = os.urandom(8 * MIB)
    oid = oid_of(data)
    async with running_hub(data_dir) as hub:
        await hub.space_and_model("team", "m1")
        _, before = await hub.call("GET", "/api/v1/spaces/team")
        reader, writer = await asyncio.open_connection(hub.server.host, hub.server.port)
        head = (
            f"PUT /team/m1.git/info/lfs/objects/{oid} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {auth(hub)['Authorization']}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        writer.write(head.encode() + data[: 3 * MIB])
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.transport.abort()
        await asyncio.sleep(0.3)
        assert not stored(hub, data).exists()
        assert temp_files(hub) == []
        _, after = await hub.call("GET", "/api/v1/spaces/team")
        assert after["used"] == before["used"]
        status, answer, _ = await batch(hub, "upload", [{"oid": oid, "size": len(data)}])
        assert "upload" in answer["objects"][0]["actions"]  # not linked: must be sent again
    # What a crash halfway through an upload leaves: a temporary file beside the object.
    crashed = stored(hub, data).with_name("0badc0de-7.part")
    crashed.write_bytes(b"half an object")
    (data_dir / "tmp" / "xorb-crashed").write_bytes(b"half a xorb")
    async with running_hub(data_dir) as hub:
        assert list((data_dir / "tmp").iterdir()) == []
        for _ in range(100):  # removed in the background, as the server starts
            if not crashed.exists():
                break
            await asyncio.sleep(0.1)
        assert temp_files(hub) == []
        assert not stored(hub, data).exists()


async def test_download_resumes_with_range(hub, model_repo):
    data = os.urandom(1 * MIB)
    status, _, _ = await batch(hub, "upload", [{"oid": oid_of(data), "size": len(data)}])
    assert status == 200
    assert (await put_object(hub, data))[0] == 200
    _, answer, _ = await batch(hub, "download", [{"oid": oid_of(data), "size": len(data)}])
    action = answer["objects"][0]["actions"]["download"]
    headers = {**action.get("header", {}), "Range": "bytes=1000-"}
    async with hub.session.get(action["href"], headers=headers) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
        assert await resp.read() == data[1000:]


async def test_batch_answers_follow_the_spec(hub, model_repo):
    data = b"hello"
    status, answer, headers = await batch(hub, "upload", [{"oid": oid_of(data), "size": 5}])
    assert status == 200 and headers["Content-Type"].startswith(LFS_JSON)
    (entry,) = answer["objects"]
    assert answer["transfer"] == "basic" and answer["hash_algo"] == "sha256"
    assert set(entry["actions"]) == {"upload", "verify"}
    assert entry["actions"]["upload"]["expires_in"] > 0
    token_headers = entry["actions"]["upload"]["header"]
    async with hub.session.put(
        entry["actions"]["upload"]["href"], data=data, headers=token_headers
    ) as resp:
        assert resp.status == 200
    if entry["actions"]["upload"]["href"].startswith(hub.base):
        assert token_headers["Authorization"].startswith("Bearer amptok.")
        # The token in the action works for the transfer and for nothing else.
        async with hub.session.get(f"{hub.base}/api/v1/users", headers=token_headers) as resp:
            assert resp.status == 401
    else:  # straight to the bucket, which takes only the bytes of this checksum
        assert set(token_headers) == {"x-amz-checksum-sha256"}
    verify = entry["actions"]["verify"]
    async with hub.session.post(
        verify["href"], json={"oid": oid_of(data), "size": 5}, headers=verify["header"]
    ) as resp:
        assert resp.status == 200
    status, answer, _ = await batch(hub, "upload", [{"oid": oid_of(data), "size": 5}])
    assert "actions" not in answer["objects"][0]  # linked already: nothing to send

    bad = [{"oid": "xyz", "size": 1}, {"oid": oid_of(b"a"), "size": -1}, {"oid": oid_of(b"b")}]
    status, answer, _ = await batch(hub, "download", bad)
    assert status == 200
    assert [o["error"]["code"] for o in answer["objects"]] == [422, 422, 422]


async def test_an_upload_href_carries_a_signature_good_for_its_object_only(hub, model_repo):
    """huggingface_hub PUTs to the href without the action's header: the href is signed."""
    data, other = b"signed object", b"another object"
    body = {
        "operation": "upload",
        "transfers": ["basic", "multipart"],
        "objects": [{"oid": oid_of(data), "size": len(data)}],
    }
    url = f"{hub.base}/team/m1.git/info/lfs/objects/batch"
    headers = {"Accept": LFS_JSON, "Content-Type": LFS_JSON, **auth(hub)}
    async with hub.session.post(url, json=body, headers=headers) as resp:
        action = (await resp.json(content_type=None))["objects"][0]["actions"]["upload"]
    href = URL(action["href"])
    assert href.user is None and href.password is None  # no key or token before the host
    signature = href.query["signature"]
    full_token = action["header"]["Authorization"].removeprefix("Bearer ")
    elsewhere = href.with_path(href.path.replace(oid_of(data), oid_of(other)))

    async def status(method: str, target: URL | str, **kwargs) -> int:
        async with hub.session.request(method, target, **kwargs) as resp:
            return resp.status

    assert await status("PUT", elsewhere, data=other) == 401  # another object
    assert await status("GET", href) == 401  # a download
    assert await status("GET", f"{hub.base}/api/v1/me?signature={signature}") == 401
    bearer = {"Authorization": f"Bearer {signature}"}
    assert await status("GET", f"{hub.base}/api/v1/me", headers=bearer) == 401
    # A transfer token, good for every object of the model, is never taken from a URL.
    assert await status("PUT", elsewhere.with_query(signature=full_token), data=other) == 401
    assert await status("PUT", href, data=data) == 200
    assert content(hub, data) == data


async def test_a_transfer_token_follows_roles_keys_and_models_after_it_was_given(hub, storage):
    if storage:
        pytest.skip("transfers go straight to the bucket by presigned URL: no amphub token")
    await hub.space_and_model("team", "m1")
    await hub.model("team", "m2")
    await hub.user("dev")
    await hub.call("PUT", "/api/v1/models/team/m1/members/dev", json={"role": "developer"})
    await hub.call("PUT", "/api/v1/models/team/m2/members/dev", json={"role": "developer"})
    objects = [os.urandom(10) for _ in range(5)]

    async def upload_action(model: str, data: bytes) -> dict:
        item = [{"oid": oid_of(data), "size": len(data)}]
        status, answer, _ = await batch(hub, "upload", item, model=model, user="dev")
        assert status == 200, answer
        return answer["objects"][0]["actions"]["upload"]

    async def put(action: dict, data: bytes, href: str | None = None) -> int:
        async with hub.session.put(
            href or action["href"], data=data, headers=action["header"]
        ) as r:
            return r.status

    first = await upload_action("m1", objects[0])
    assert await put(first, objects[0]) == 200
    other = await upload_action("m2", objects[1])
    assert await put(first, objects[1], other["href"]) == 401  # good for m1 only

    demoted = await upload_action("m1", objects[2])
    await hub.call("PUT", "/api/v1/models/team/m1/members/dev", json={"role": "visitor"})
    assert await put(demoted, objects[2]) == 403

    renewed = await upload_action("m2", objects[3])
    status, body = await hub.call("POST", "/api/v1/me/key", user="dev")
    assert status == 200
    assert await put(renewed, objects[3]) == 401
    hub.keys["dev"] = body["key"]

    gone = await upload_action("m2", objects[4])
    status, _ = await hub.call("DELETE", "/api/v1/models/team/m2")
    assert status in (200, 202, 204)
    assert await put(gone, objects[4]) == 404


async def test_batch_request_errors(hub, model_repo):
    url = f"{hub.base}/team/m1.git/info/lfs/objects/batch"
    headers = {"Content-Type": LFS_JSON, **auth(hub)}
    cases = [
        ({"operation": "delete", "objects": []}, 422, "operation must be upload or download"),
        ({"operation": "download", "objects": [], "hash_algo": "md5"}, 409, "sha256 only"),
        ({"operation": "download", "objects": [], "transfers": ["tus"]}, 422, "basic transfer"),
        (
            {"operation": "download", "objects": [{"oid": "a" * 64, "size": 1}] * 1001},
            413,
            "at most",
        ),
    ]
    for body, status, message in cases:
        async with hub.session.post(url, json=body, headers=headers) as resp:
            answer = await resp.json(content_type=None)
            assert resp.status == status, answer
            assert message in answer["message"] and answer["request_id"]
            assert resp.headers["Content-Type"].startswith(LFS_JSON)
    async with hub.session.post(url, json={"operation": "download", "objects": []}) as resp:
        assert resp.status == 401
        assert resp.headers["LFS-Authenticate"].startswith("Basic")


async def test_reader_may_not_upload_and_stranger_sees_nothing(hub, tmp_path):
    await hub.space_and_model("team", "m1", visibility="public")
    await hub.model("team", "secret")
    await hub.user("reader")
    data = os.urandom(100)
    await batch(hub, "upload", [{"oid": oid_of(data), "size": 100}], model="secret")
    assert (await put_object(hub, data, model="secret"))[0] == 200

    status, answer, _ = await batch(
        hub, "upload", [{"oid": oid_of(data), "size": 100}], user="reader"
    )
    assert status == 403 and "you may not push" in answer["message"]
    # Knowing the oid of an object in a model you cannot see gets you nothing.
    status, answer, _ = await batch(
        hub, "download", [{"oid": oid_of(data), "size": 100}], user="reader"
    )
    assert status == 200 and answer["objects"][0]["error"]["code"] == 404
    status, answer, _ = await batch(
        hub, "download", [{"oid": oid_of(data), "size": 100}], model="secret", user="reader"
    )
    assert status == 404
    url = f"{hub.base}/team/m1.git/info/lfs/objects/{oid_of(data)}"
    async with hub.session.get(url, headers=auth(hub, "reader")) as resp:
        assert resp.status == 404
    # Even the owner must send the bytes before m1 may serve an object stored for another model.
    status, answer, _ = await batch(hub, "upload", [{"oid": oid_of(data), "size": 100}])
    assert "upload" in answer["objects"][0]["actions"]
    async with hub.session.get(url, headers=auth(hub)) as resp:
        assert resp.status == 404


async def test_same_object_uploaded_eight_times_to_two_models_is_stored_once(hub, tmp_path):
    await hub.space_and_model("team", "m1")
    await hub.model("team", "m2")
    data = os.urandom(2 * MIB)
    results = await asyncio.gather(
        *(put_object(hub, data, model=("m1", "m2")[i % 2]) for i in range(8))
    )
    assert [status for status, _ in results] == [200] * 8
    assert content(hub, data) == data
    for model in ("m1", "m2"):
        _, answer, _ = await batch(
            hub, "download", [{"oid": oid_of(data), "size": len(data)}], model=model
        )
        assert "download" in answer["objects"][0]["actions"]
    assert temp_files(hub) == []
    _, space = await hub.call("GET", "/api/v1/spaces/team")
    assert len(data) <= space["used"] < len(data) + MIB  # counted once per space


async def test_small_objects_put_at_once_are_each_linked(hub, model_repo):
    objects = [os.urandom(1000 + i) for i in range(16)]
    wanted = [{"oid": oid_of(data), "size": len(data)} for data in objects]
    status, _, _ = await batch(hub, "upload", wanted)
    assert status == 200
    results = await asyncio.gather(*(put_object(hub, data) for data in objects))
    assert [status for status, _ in results] == [200] * len(objects)
    _, answer, _ = await batch(hub, "download", wanted)
    assert [("download" in o.get("actions", {}), o["size"]) for o in answer["objects"]] == [
        (True, len(data)) for data in objects
    ]
    _, space = await hub.call("GET", "/api/v1/spaces/team")
    total = sum(map(len, objects))
    assert total <= space["used"] < total + MIB  # and the git repository


async def test_a_wrong_object_among_others_put_at_once_fails_alone(hub, model_repo):
    objects = [os.urandom(500 + i) for i in range(12)]
    wrong = [os.urandom(300), os.urandom(301)]
    named = [oid_of(b"not this %d" % i) for i in range(len(wrong))]
    wanted = [{"oid": oid_of(data), "size": len(data)} for data in objects]
    wanted += [{"oid": oid, "size": len(data)} for oid, data in zip(named, wrong, strict=True)]
    assert (await batch(hub, "upload", wanted))[0] == 200
    puts = [put_object(hub, data) for data in objects]
    puts[3:3] = [put_object(hub, data, oid=oid) for oid, data in zip(named, wrong, strict=True)]
    results = await asyncio.gather(*puts)
    statuses = [status for status, _ in results]
    assert statuses == [200] * 3 + [422] * 2 + [200] * 9
    assert all("does not match its oid" in body for _, body in results[3:5])
    assert all(content(hub, data) == data for data in objects)
    assert not any(objects_of(hub).read(oid) for oid in named)
    assert temp_files(hub) == []


def test_a_group_of_objects_is_stored_together_and_each_failure_alone(tmp_path):
    store = LocalObjectStore(tmp_path / "objects", tmp_path / "tmp")
    damaged, new, bad = os.urandom(100), os.urandom(200), os.urandom(300)
    assert put_group(store, [(oid_of(damaged), damaged)]) == [None]
    store.path(oid_of(damaged)).write_bytes(b"x" * 100)
    outcomes = put_group(
        store, [(oid_of(new), new), (oid_of(b"other"), bad), (oid_of(damaged), damaged)]
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ObjectMismatch)
    assert store.path(oid_of(new)).read_bytes() == new
    assert store.path(oid_of(damaged)).read_bytes() == damaged  # checked bytes replace it
    assert not store.path(oid_of(b"other")).exists()
    assert list((tmp_path / "objects").rglob("*.part")) == []


async def test_an_upload_batch_makes_the_folders_of_its_objects_first(hub, model_repo, storage):
    if storage:
        pytest.skip("a bucket has no folders")
    objects = [os.urandom(100 + i) for i in range(4)]
    wanted = [{"oid": oid_of(data), "size": len(data)} for data in objects]
    assert not any(stored(hub, data).parent.exists() for data in objects)
    status, _, _ = await batch(hub, "upload", wanted)
    assert status == 200
    assert all(stored(hub, data).parent.is_dir() for data in objects)
    assert not any(stored(hub, data).exists() for data in objects)
    results = await asyncio.gather(*(put_object(hub, data) for data in objects))
    assert [status for status, _ in results] == [200] * len(objects)
    assert [stored(hub, data).read_bytes() for data in objects] == objects


@contextlib.asynccontextmanager
async def space_with_quota(tmp_path: Path, quota: int) -> AsyncIterator[Hub]:
    """A server whose space `team`, with model `m1`, may hold `quota` bytes."""
    async with running_hub(tmp_path / "data", quota_unit=quota) as hub:
        await hub.space("team", quota=quota)
        await hub.model("team", "m1")
        yield hub


async def test_quota_refuses_a_push_with_a_readable_message(tmp_path):
    await git("lfs", "install", "--skip-repo")
    async with space_with_quota(tmp_path, 1 * MIB) as hub:
        work = await lfs_clone(hub, tmp_path, "w")
        (work / "big.bin").write_bytes(os.urandom(2 * MIB))
        await git("add", "big.bin", cwd=work)
        await git("commit", "-q", "-m", "big", cwd=work)
        result = await git("push", cwd=work, check=False)
        assert result.returncode != 0
        assert "space team is over its quota" in result.stderr
        assert "2.00 MiB more" in result.stderr
        _, space = await hub.call("GET", "/api/v1/spaces/team")
        assert space["used"] < MIB
        assert [p for p in (tmp_path / "data" / "lfs" / "objects").rglob("*") if p.is_file()] == []


async def test_quota_refuses_a_git_pack_that_does_not_fit(tmp_path):
    async with space_with_quota(tmp_path, 1 * MIB) as hub:
        work = await lfs_clone(hub, tmp_path, "w")
        before = (await git("ls-remote", hub.remote("team", "m1"), "master")).stdout
        (work / "raw.dat").write_bytes(os.urandom(2 * MIB))
        await git("add", "raw.dat", cwd=work)
        await git("commit", "-q", "-m", "raw", cwd=work)
        result = await git("push", cwd=work, check=False)
        assert result.returncode != 0
        assert "remote: push refused: space team is over its quota" in result.stderr
        assert (await git("ls-remote", hub.remote("team", "m1"), "master")).stdout == before
        objects = tmp_path / "data" / "repos" / "team" / "m1.git" / "objects"
        assert list(objects.glob("tmp_pack_*")) == []


async def test_a_full_space_still_takes_a_new_branch_or_tag_at_a_commit_it_has(tmp_path):
    async with space_with_quota(tmp_path, 1 * MIB) as hub:
        work = await lfs_clone(hub, tmp_path, "w")
        _, space = await hub.call("GET", "/api/v1/spaces/team")
        filler = os.urandom(space["quota"] - space["used"])
        await batch(hub, "upload", [{"oid": oid_of(filler), "size": len(filler)}])
        assert (await put_object(hub, filler))[0] == 200
        _, space = await hub.call("GET", "/api/v1/spaces/team")
        assert space["used"] == space["quota"]

        objects = tmp_path / "data" / "repos" / "team" / "m1.git" / "objects"
        packs = sorted(objects.rglob("*"))
        await git("push", "-q", "origin", "HEAD:refs/heads/side", cwd=work)
        await git("tag", "v1", cwd=work)
        await git("push", "-q", "origin", "v1", cwd=work)
        refs = (await git("ls-remote", hub.remote("team", "m1"))).stdout
        assert "refs/heads/side" in refs and "refs/tags/v1" in refs
        assert sorted(objects.rglob("*")) == packs  # no (empty) pack kept for them
        (work / "more.txt").write_text("more")
        await git("add", "more.txt", cwd=work)
        await git("commit", "-q", "-m", "more", cwd=work)
        result = await git("push", "origin", "HEAD:refs/heads/side", cwd=work, check=False)
        assert "over its quota" in result.stderr  # new objects still do not fit


async def test_two_concurrent_pushes_that_each_fit_alone(tmp_path):
    await git("lfs", "install", "--skip-repo")
    async with space_with_quota(tmp_path, 3 * MIB) as hub:
        await hub.model("team", "m2")
        works = []
        for model in ("m1", "m2"):
            work = tmp_path / model
            await git("clone", "-q", hub.remote("team", model), str(work))
            (work / "w.bin").write_bytes(os.urandom(2 * MIB))
            await git("add", "w.bin", cwd=work)
            await git("commit", "-q", "-m", "w", cwd=work)
            works.append(work)
        results = await asyncio.gather(*(git("push", cwd=w, check=False) for w in works))
        outcome = [(r.returncode, r.stderr) for r in results]
        assert sorted(r.returncode == 0 for r in results) == [False, True], outcome
        refused = next(r for r in results if r.returncode)
        assert "over its quota" in refused.stderr, outcome
        _, space = await hub.call("GET", "/api/v1/spaces/team")
        assert 2 * MIB <= space["used"] <= 3 * MIB, (space, outcome)


async def test_locks_from_two_users(hub, tmp_path):
    await git("lfs", "install", "--skip-repo")
    await hub.user("ada", creator=True)
    await hub.space("team", owner="ada")
    await hub.model("team", "m1", owner="ada")
    ada = await lfs_clone(hub, tmp_path, "ada", user="ada")
    await push(ada, {"model.bin": os.urandom(1000)}, "add")
    admin = await lfs_clone(hub, tmp_path, "admin")

    await git("lfs", "lock", "model.bin", cwd=ada)
    listed = (await git("lfs", "locks", cwd=admin)).stdout
    assert "model.bin" in listed and "ada" in listed
    again = await git("lfs", "lock", "model.bin", cwd=admin, check=False)
    assert again.returncode != 0

    await git("config", "lfs.locksverify", "true", cwd=admin)
    (admin / "model.bin").write_bytes(os.urandom(1000))
    await git("commit", "-q", "-am", "change a locked file", cwd=admin)
    refused = await git("push", cwd=admin, check=False)
    assert refused.returncode != 0
    assert "Cannot update locked files." in refused.stderr
    assert "* model.bin - ada" in refused.stdout

    plain = await git("lfs", "unlock", "model.bin", cwd=admin, check=False)
    assert plain.returncode != 0
    await git("lfs", "unlock", "--force", "model.bin", cwd=admin)
    assert "model.bin" not in (await git("lfs", "locks", cwd=ada)).stdout
    await git("push", cwd=admin)

    await git("lfs", "lock", "model.bin", cwd=ada)
    await git("lfs", "unlock", "model.bin", cwd=ada)


async def test_locks_api_paging_and_filters(hub, model_repo):
    url = f"{hub.base}/team/m1.git/info/lfs/locks"
    headers = {"Content-Type": LFS_JSON, **auth(hub)}
    for i in range(5):
        async with hub.session.post(url, json={"path": f"f{i}.bin"}, headers=headers) as resp:
            assert resp.status == 201
    async with hub.session.post(url, json={"path": "f0.bin"}, headers=headers) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 409 and body["lock"]["path"] == "f0.bin"
    async with hub.session.get(url + "?limit=2", headers=headers) as resp:
        page = await resp.json(content_type=None)
    assert [lock["path"] for lock in page["locks"]] == ["f0.bin", "f1.bin"]
    async with hub.session.get(
        url + f"?limit=2&cursor={page['next_cursor']}", headers=headers
    ) as resp:
        page2 = await resp.json(content_type=None)
    assert [lock["path"] for lock in page2["locks"]] == ["f2.bin", "f3.bin"]
    async with hub.session.get(url + "?path=f4.bin", headers=headers) as resp:
        assert [lock["path"] for lock in (await resp.json(content_type=None))["locks"]] == [
            "f4.bin"
        ]
    async with hub.session.post(url + "/verify", json={}, headers=headers) as resp:
        verify = await resp.json(content_type=None)
    assert len(verify["ours"]) == 5 and verify["theirs"] == []


def no_grace(hub: Hub) -> None:
    """Collect unreferenced objects however recently written (the grace has its own test)."""
    amphub = hub.server.app[keys.HUB]
    amphub.config = dataclasses.replace(amphub.config, object_grace_seconds=0)


async def test_deleting_a_model_removes_objects_no_other_model_references(hub, tmp_path):
    no_grace(hub)
    await hub.space_and_model("team", "m1")
    await hub.model("team", "m2")
    shared, own = os.urandom(3000), os.urandom(4000)
    for model, data in (("m1", shared), ("m2", shared), ("m1", own)):
        assert (await put_object(hub, data, model=model))[0] == 200
    status, _ = await hub.call("DELETE", "/api/v1/models/team/m1")
    assert status == 204
    for _ in range(50):
        if content(hub, own) is None:
            break
        await asyncio.sleep(0.05)
    assert content(hub, own) is None
    assert content(hub, shared) == shared
    _, answer, _ = await batch(hub, "download", [{"oid": oid_of(shared), "size": 3000}], model="m2")
    assert "download" in answer["objects"][0]["actions"]
    assert not (hub.data_dir / "repos" / "team" / "m1.git").exists()
    assert (await hub.call("GET", "/api/v1/models/team/m1"))[0] == 404
    _, space = await hub.call("GET", "/api/v1/spaces/team")
    assert space["used"] < 3000 + 2 * MIB


async def test_garbage_collection_leaves_an_object_an_upload_claims(hub, model_repo):
    # An upload that found the object stored already has not linked it yet: a collection
    # between the two (its last model deleted meanwhile) must not take the file away.
    amphub = hub.server.app[keys.HUB]
    no_grace(hub)
    await hub.model("team", "m2")
    data = os.urandom(5000)
    status, _, _ = await batch(hub, "upload", [{"oid": oid_of(data), "size": 5000}], model="m2")
    assert status == 200
    assert (await put_object(hub, data, model="m2"))[0] == 200
    model = await db.get_model(amphub.db, "team", "m2")
    oids = await delete_model(amphub, model, db.Audit("admin", "delete_model", "team", "m2"))
    assert oids == [oid_of(data)]
    async with claim(amphub, oid_of(data)):
        assert await collect(amphub, oids) == 0
    assert content(hub, data) == data
    assert await collect(amphub, oids) == 1
    assert content(hub, data) is None

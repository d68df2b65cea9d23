"""LFS objects in an S3 bucket (a real SeaweedFS): where the bytes go and come from."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from amphub.config import Config
from amphub.server.app import build_hub
from amphub.storage.objects import StoreUnusable
from tests.conftest import GIB, S3_KEY, StoredBytes, git, push, running_hub
from tests.test_lfs import auth, batch, lfs_clone, put_object

MIB = 1024 * 1024


def oid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_objects_live_in_the_bucket_and_downloads_come_from_it(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    stored = StoredBytes(tmp_path / "data", s3_bucket, seaweedfs)
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        hub.stored = stored
        await hub.space_and_model("team", "m1")
        await git("lfs", "install", "--skip-repo")
        work = await lfs_clone(hub, tmp_path, "w")
        files = {"model.safetensors": os.urandom(5 * MIB), "small.bin": b"tiny"}
        await push(work, files, "add")
        for data in files.values():
            assert stored.read(oid_of(data)) == data
        # git-lfs put the large one straight into its place, by the presigned PUT.
        key = stored._key(oid_of(files["model.safetensors"]))
        head = seaweedfs.client().head_object(Bucket=stored.bucket, Key=key)
        assert "amphub-ticket" in head["Metadata"]
        keys = stored.keys()
        assert not [key for key in keys if "/incoming/" in key]
        assert not [p for p in (tmp_path / "data" / "lfs").rglob("*") if p.is_file()]

        wanted = [{"oid": oid_of(data), "size": len(data)} for data in files.values()]
        _, answer, _ = await batch(hub, "download", wanted)
        for entry in answer["objects"]:
            action = entry["actions"]["download"]
            assert action["href"].startswith(seaweedfs.endpoint + "/")
            assert "header" not in action  # the URL is presigned: no amphub key goes there
            assert 0 < action["expires_in"] <= 3600
        copy = await lfs_clone(hub, tmp_path, "copy")
        for name, data in files.items():
            assert (copy / name).read_bytes() == data

        # The blob API redirects to the bucket too; Range goes to the store.
        blob = f"{hub.base}/api/v1/models/team/m1/blob/master/model.safetensors"
        async with hub.session.get(blob, headers=auth(hub), allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"].startswith(seaweedfs.endpoint + "/")
        ranged = {**auth(hub), "Range": "bytes=100-199"}
        async with hub.session.get(blob, headers=ranged) as resp:
            assert resp.status == 206 and await resp.read() == files["model.safetensors"][100:200]


async def test_a_download_batch_asks_the_bucket_nothing(tmp_path: Path, s3_bucket: dict, seaweedfs):
    """Its URLs are presigned by amphub alone; the bucket answers each when it is used."""
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        objects = [os.urandom(100 + i) for i in range(20)]
        for data in objects:
            assert (await put_object(hub, data))[0] == 200
        wanted = [{"oid": oid_of(data), "size": len(data)} for data in objects]
        before = seaweedfs.counted("SeaweedFS_s3_request_total")
        _, answer, _ = await batch(hub, "download", wanted)
        assert seaweedfs.counted("SeaweedFS_s3_request_total") == before
        for entry, data in zip(answer["objects"], objects, strict=True):
            async with hub.session.get(entry["actions"]["download"]["href"]) as resp:
                assert resp.status == 200 and await resp.read() == data


async def test_with_redirection_off_amphub_streams_with_range(tmp_path: Path, s3_bucket: dict):
    async with running_hub(tmp_path / "data", s3_redirect=0, **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(5 * MIB + 123)
        assert (await put_object(hub, data))[0] == 200
        _, answer, _ = await batch(hub, "download", [{"oid": oid_of(data), "size": len(data)}])
        action = answer["objects"][0]["actions"]["download"]
        assert action["href"].startswith(hub.base + "/")
        async with hub.session.get(action["href"], headers=action["header"]) as resp:
            assert resp.status == 200 and await resp.read() == data
        ranged = {**action["header"], "Range": "bytes=4194000-"}
        async with hub.session.get(action["href"], headers=ranged) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 4194000-{len(data) - 1}/{len(data)}"
            assert await resp.read() == data[4194000:]


async def test_a_large_upload_goes_in_parts_and_a_wrong_one_leaves_nothing(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    stored = StoredBytes(tmp_path / "data", s3_bucket, seaweedfs)
    part = 5 * MIB
    async with running_hub(tmp_path / "data", s3_part_size=part, **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(3 * part + 1000)
        assert (await put_object(hub, data))[0] == 200
        assert stored.read(oid_of(data)) == data
        head = seaweedfs.client().head_object(Bucket=stored.bucket, Key=stored._key(oid_of(data)))
        parts = int(head["ETag"].strip('"').rpartition("-")[2])
        assert 2 <= parts <= 3  # a multipart upload: parts of at least s3_part_size

        wrong = oid_of(b"something else")
        status, body = await put_object(hub, data, oid=wrong)
        assert status == 422 and "does not match its oid" in body
        assert stored.read(wrong) is None and stored.half_received() == []


async def test_a_bucket_that_cannot_be_used_stops_the_start_with_one_sentence(
    tmp_path: Path, seaweedfs
):
    config = Config(
        data_dir=tmp_path / "data",
        storage="s3://no-such-bucket",
        s3_endpoint=seaweedfs.endpoint,
        s3_access_key_id=S3_KEY,
        s3_secret_access_key="wrong secret",
    )
    hub = build_hub(config)
    with pytest.raises(StoreUnusable) as info:
        await hub.objects.open()
    message = str(info.value)
    assert message.startswith(f"the bucket no-such-bucket at {seaweedfs.endpoint} cannot be used")
    assert "wrong secret" not in message and message.count(".") <= 3
    hub.threads.shutdown()


@pytest.mark.parametrize("quota", [GIB])
async def test_quota_counts_objects_in_the_bucket(tmp_path: Path, s3_bucket: dict, quota: int):
    async with running_hub(tmp_path / "data", quota_unit=quota, **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(2 * MIB)
        assert (await put_object(hub, data))[0] == 200
        _, space = await hub.call("GET", "/api/v1/spaces/team")
        assert len(data) <= space["used"] < len(data) + MIB


async def test_serve_says_what_is_wrong_with_the_bucket_and_stops(tmp_path: Path, seaweedfs):
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amphub", "serve", "--data", str(tmp_path / "data"),
        "--port", "0", "--storage", "s3://missing-bucket", "--s3-endpoint", seaweedfs.endpoint,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": "not it"},
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amphub: the bucket missing-bucket at ")
    assert "not it" not in lines[0]


async def test_sync_from_a_data_dir_to_a_peer_on_a_bucket(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    import aiohttp

    from tests.conftest import Hub, start_hub
    from tests.test_sync import register_zone, sync

    await git("lfs", "install", "--skip-repo")
    peer_objects = StoredBytes(tmp_path / "peer", s3_bucket, seaweedfs)
    async with running_hub(tmp_path / "data") as source:
        server, key = await start_hub(tmp_path / "peer", **s3_bucket)
        try:
            async with aiohttp.ClientSession() as session:
                peer = Hub(server, session, key, tmp_path / "peer")
                await peer.user("syncer", creator=True)
                await register_zone(source, peer, peer.keys["syncer"])
                await source.space_and_model("team", "m1")
                files = {"weights.bin": os.urandom(3 * MIB), "config.json": b"{}"}
                await push(tmp_path / "work", files, "first", clone=source.remote("team", "m1"))
                done = await sync(source, "master")
                assert done["status"] == "succeeded", done
                assert done["result"]["lfs_objects_sent"] == 1
                assert peer_objects.read(oid_of(files["weights.bin"])) == files["weights.bin"]
                copy = tmp_path / "copy"
                await git("clone", "-q", peer.remote("team", "m1", "syncer"), str(copy))
                assert (copy / "weights.bin").read_bytes() == files["weights.bin"]
        finally:
            await server.close()


async def test_hf_resolve_redirects_to_the_bucket_with_the_hubs_headers(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    await git("lfs", "install", "--skip-repo")
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(MIB)
        await push(tmp_path / "w", {"w.bin": data}, "add", clone=hub.remote("team", "m1"))
        url = f"{hub.base}/team/m1/resolve/main/w.bin"
        headers = {"Authorization": f"Bearer {hub.admin_key}"}
        async with hub.session.head(url, headers=headers, allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"].startswith(seaweedfs.endpoint + "/")
            assert resp.headers["X-Linked-Size"] == str(len(data))
            assert resp.headers["X-Linked-Etag"] == f'"{oid_of(data)}"'
            assert len(resp.headers["X-Repo-Commit"]) == 40


async def test_direct_uploads_take_only_the_right_bytes_and_link_only_when_verified(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    import aiohttp

    stored = StoredBytes(tmp_path / "data", s3_bucket, seaweedfs)
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        await hub.model("team", "m2")
        data = os.urandom(5 * MIB)
        oid = oid_of(data)
        small = [{"oid": oid_of(b"small"), "size": 5}]  # one request to the store: via amphub
        _, answer, _ = await batch(hub, "upload", small)
        assert answer["objects"][0]["actions"]["upload"]["href"].startswith(hub.base + "/")
        _, answer, _ = await batch(hub, "upload", [{"oid": oid, "size": len(data)}])
        upload = answer["objects"][0]["actions"]["upload"]
        verify = answer["objects"][0]["actions"]["verify"]
        assert upload["href"].startswith(seaweedfs.endpoint + "/")  # the probe proved it
        huge = [{"oid": oid_of(b"huge"), "size": 6 * GIB}]  # past one PUT: through amphub
        _, answer, _ = await batch(hub, "upload", huge)
        assert answer["objects"][0]["actions"]["upload"]["href"].startswith(hub.base + "/")

        async with aiohttp.ClientSession() as raw:
            wrong = os.urandom(len(data))
            async with raw.put(upload["href"], data=wrong, headers=upload["header"]) as resp:
                assert resp.status >= 400  # the store checks the signed checksum
            async with raw.put(upload["href"], data=wrong) as resp:
                assert resp.status >= 400  # and the header is part of the signature
            body = {"oid": oid, "size": len(data)}
            async with raw.post(verify["href"], json=body, headers=verify["header"]) as resp:
                assert resp.status == 404  # nothing put: nothing linked
            async with raw.put(upload["href"], data=data, headers=upload["header"]) as resp:
                assert resp.status == 200
            assert stored.read(oid) == data  # not stored before: put straight into its place
            _, answer, _ = await batch(hub, "download", [{"oid": oid, "size": len(data)}])
            assert answer["objects"][0]["error"]["code"] == 404  # but linked only at verify
            _, space = await hub.call("GET", "/api/v1/spaces/team")
            before = space["used"]
            # The oid known, but put by another model's upload: m2 links nothing.
            other = f"{hub.base}/team/m2.git/info/lfs/verify"
            async with raw.post(other, json=body, headers=verify["header"]) as resp:
                assert resp.status in (401, 404)
            m2_verify = f"{hub.base}/team/m2.git/info/lfs/verify"
            admin = {"Authorization": f"Bearer {hub.admin_key}"}
            async with raw.post(m2_verify, json=body, headers=admin) as resp:
                assert resp.status == 404
            async with raw.post(verify["href"], json=body, headers=verify["header"]) as resp:
                assert resp.status == 200
        assert stored.read(oid) == data
        _, space = await hub.call("GET", "/api/v1/spaces/team")
        assert space["used"] >= before + len(data)
        _, answer, _ = await batch(hub, "download", [{"oid": oid, "size": len(data)}])
        assert "download" in answer["objects"][0]["actions"]
        _, answer, _ = await batch(hub, "download", [{"oid": oid, "size": len(data)}], model="m2")
        assert answer["objects"][0]["error"]["code"] == 404


async def test_a_direct_upload_of_a_stored_object_proves_itself_under_its_ticket(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    """Two models put the same new object straight to its key; the last one's verify links it.

    The other is asked to put it again, under its ticket (the object is stored now), and is
    linked once it did: knowing the oid, or having had an upload action, links nothing.
    """
    import aiohttp

    stored = StoredBytes(tmp_path / "data", s3_bucket, seaweedfs)
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        await hub.model("team", "m2")
        data = os.urandom(5 * MIB)
        wanted = [{"oid": oid_of(data), "size": len(data)}]
        body = wanted[0]
        actions = {}
        for model in ("m1", "m2"):
            _, answer, _ = await batch(hub, "upload", wanted, model=model)
            actions[model] = answer["objects"][0]["actions"]
        assert actions["m1"]["upload"]["href"] != actions["m2"]["upload"]["href"]
        async with aiohttp.ClientSession() as raw:

            async def put(action: dict) -> None:
                upload = action["upload"]
                async with raw.put(upload["href"], data=data, headers=upload["header"]) as resp:
                    assert resp.status == 200

            async def verify(action: dict) -> int:
                verify = action["verify"]
                async with raw.post(verify["href"], json=body, headers=verify["header"]) as resp:
                    return resp.status

            await put(actions["m1"])
            await put(actions["m2"])  # the same bytes again: the store took only those
            assert stored.read(oid_of(data)) == data
            assert await verify(actions["m1"]) == 404  # m2's upload came last
            assert await verify(actions["m2"]) == 200
            assert await verify(actions["m2"]) == 200  # again: nothing changes

            _, answer, _ = await batch(hub, "upload", wanted, model="m1")
            again = answer["objects"][0]["actions"]
            assert "/incoming/" in again["upload"]["href"]  # stored: never overwritten
            assert await verify(again) == 404
            await put(again)
            assert await verify(again) == 200
        assert stored.read(oid_of(data)) == data
        keys = stored.keys()
        assert not [key for key in keys if "/incoming/" in key]  # adopted: removed
        for model in ("m1", "m2"):
            _, answer, _ = await batch(hub, "download", wanted, model=model)
            assert "download" in answer["objects"][0]["actions"]


async def test_a_model_made_again_under_its_name_links_nothing_the_old_one_put(
    tmp_path: Path, s3_bucket: dict
):
    from datetime import UTC, datetime

    from tests.conftest import FakeClock

    clock = FakeClock(datetime.now(UTC))
    async with running_hub(tmp_path / "data", clock, **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(5 * MIB)
        body = {"oid": oid_of(data), "size": len(data)}
        _, answer, _ = await batch(hub, "upload", [body])
        upload = answer["objects"][0]["actions"]["upload"]
        async with hub.session.put(upload["href"], data=data, headers=upload["header"]) as resp:
            assert resp.status == 200  # put, never verified
        assert (await hub.call("DELETE", "/api/v1/models/team/m1"))[0] == 204
        clock.advance(seconds=1)
        await hub.model("team", "m1")
        verify = f"{hub.base}/team/m1.git/info/lfs/verify"
        async with hub.session.post(verify, json=body, headers=auth(hub)) as resp:
            assert resp.status == 404


async def test_without_signature_checks_uploads_go_through_amphub(tmp_path: Path, s3_bucket):
    async with running_hub(tmp_path / "data", s3_redirect=0, **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(1000)
        _, answer, _ = await batch(hub, "upload", [{"oid": oid_of(data), "size": len(data)}])
        assert answer["objects"][0]["actions"]["upload"]["href"].startswith(hub.base + "/")


async def test_an_unreferenced_object_is_kept_through_its_grace_period(
    tmp_path: Path, storage: dict, stored_bytes: StoredBytes
):
    import dataclasses

    from amphub.http import keys

    async with running_hub(tmp_path / "data", object_grace_seconds=3600, **storage) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(5000)
        assert (await put_object(hub, data))[0] == 200
        assert (await hub.call("DELETE", "/api/v1/models/team/m1"))[0] == 204
        amphub = hub.server.app[keys.HUB]
        await amphub.background.drain()
        assert stored_bytes.read(oid_of(data)) == data  # written a moment ago: kept
        amphub.config = dataclasses.replace(amphub.config, object_grace_seconds=1)
        import asyncio

        from amphub.services.objects import collect_unreferenced

        await asyncio.sleep(2.1)  # S3's LastModified has whole seconds
        assert await collect_unreferenced(amphub) == 1
        assert stored_bytes.read(oid_of(data)) is None


async def test_collection_racing_an_upload_of_the_same_object_never_loses_it(
    tmp_path: Path, storage: dict, stored_bytes: StoredBytes
):
    """m1, the object's last model, goes while m2 uploads the same bytes, slowly."""
    import asyncio

    from amphub.http import keys
    from amphub.services.objects import collect_unreferenced
    from tests.test_lfs import auth

    data = os.urandom(12 * MIB)
    oid = oid_of(data)
    async with running_hub(tmp_path / "data", object_grace_seconds=3600, **storage) as hub:
        await hub.space_and_model("team", "m1")
        await hub.model("team", "m2")
        assert (await put_object(hub, data))[0] == 200
        amphub = hub.server.app[keys.HUB]
        reader, writer = await asyncio.open_connection(hub.server.host, hub.server.port)
        writer.write(
            (
                f"PUT /team/m2.git/info/lfs/objects/{oid} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {auth(hub)['Authorization']}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[: 6 * MIB]
        )
        await writer.drain()
        assert (await hub.call("DELETE", "/api/v1/models/team/m1"))[0] == 204
        for _ in range(5):  # collections while the upload is under way, and the sweep's
            await amphub.background.drain()
            await collect_unreferenced(amphub)
            await asyncio.sleep(0.05)
        writer.write(data[6 * MIB :])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
        assert b" 200 " in status_line
        writer.close()
        await collect_unreferenced(amphub)
        assert stored_bytes.read(oid) == data
        _, answer, _ = await batch(hub, "download", [{"oid": oid, "size": len(data)}], model="m2")
        assert "download" in answer["objects"][0]["actions"]


async def test_collection_on_one_node_never_loses_an_object_another_node_is_linking(
    tmp_path: Path, storage: dict, stored_bytes: StoredBytes
):
    """Node b stores for team/m2 the object of other/m1; m1 goes on node a meanwhile.

    b's claim is b's own: a sees an unreferenced object, written a moment ago (its grace).
    b's link waits here for its space's quota lock, as it does while another upload to the
    space holds it.
    """
    from aiohttp.test_utils import TestServer

    from amphub.http import keys
    from amphub.services.objects import collect_unreferenced
    from tests.conftest import Hub, start_hub

    data = os.urandom(5 * MIB)
    wanted = [{"oid": oid_of(data), "size": len(data)}]
    async with running_hub(tmp_path / "data", object_grace_seconds=3600, **storage) as a:
        await a.space_and_model("other", "m1")
        await a.space_and_model("team", "m2")
        url = f"{a.base}/other/m1.git/info/lfs/objects/{oid_of(data)}"
        async with a.session.put(url, data=data, headers=auth(a)) as resp:
            assert resp.status == 200
        server, _ = await start_hub(tmp_path / "data", object_grace_seconds=3600, **storage)
        assert isinstance(server, TestServer)
        try:
            b = Hub(server, a.session, a.admin_key, a.data_dir)
            b_hub = server.app[keys.HUB]
            _, answer, _ = await batch(b, "upload", wanted, model="m2")
            assert "upload" in answer["objects"][0]["actions"]  # room reserved in team on b
            async with b_hub.locks.hold(("quota", "team")):
                upload = asyncio.ensure_future(put_object(b, data, model="m2"))
                while not b_hub.link_batches:  # stored by b, waiting to be linked
                    assert not upload.done()
                    await asyncio.sleep(0.01)
                assert (await a.call("DELETE", "/api/v1/models/other/m1"))[0] == 204
                await a.server.app[keys.HUB].background.drain()  # the deletion's collection
                await collect_unreferenced(a.server.app[keys.HUB])  # and a sweep
            assert (await upload)[0] == 200
        finally:
            await server.close()
        assert stored_bytes.read(oid_of(data)) == data
        _, answer, _ = await batch(a, "download", wanted, model="m2")
        assert "download" in answer["objects"][0]["actions"]


async def test_a_backup_names_the_bucket_objects_and_copies_the_rest(
    tmp_path: Path, s3_bucket: dict
):
    from amphub.config import Config
    from amphub.services.backup import backup

    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        data = os.urandom(4000)
        assert (await put_object(hub, data))[0] == 200
        config = Config(data_dir=tmp_path / "data", **s3_bucket)
        said = await asyncio.to_thread(backup, config, tmp_path / "backup")
    assert (tmp_path / "backup" / "lfs-objects.txt").read_text() == oid_of(data) + "\n"
    assert any("named in lfs-objects.txt" in sentence for sentence in said)
    assert not any("were not in the store" in sentence for sentence in said)


async def test_the_pages_download_link_goes_to_the_bucket_under_the_files_name(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    await git("lfs", "install", "--skip-repo")
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1", visibility="public")
        data = os.urandom(MIB)
        await push(tmp_path / "w", {"w.bin": data}, "add", clone=hub.remote("team", "m1"))
        raw = f"{hub.base}/team/m1/raw/master/w.bin"
        async with hub.session.get(raw, allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"].startswith(seaweedfs.endpoint + "/")
        async with hub.session.get(raw) as resp:
            assert resp.status == 200 and await resp.read() == data
            assert 'filename="w.bin"' in resp.headers["Content-Disposition"]


async def test_doctor_lists_the_bucket_and_verifies_by_streaming(
    tmp_path: Path, s3_bucket: dict, seaweedfs
):
    from amphub.server.app import offline
    from amphub.services.doctor import examine

    stored = StoredBytes(tmp_path / "data", s3_bucket, seaweedfs)
    objects = {name: os.urandom(3000 + i) for i, name in enumerate(("lost", "flipped", "ok"))}
    async with running_hub(tmp_path / "data", **s3_bucket) as hub:
        await hub.space_and_model("team", "m1")
        for data in objects.values():
            assert (await put_object(hub, data))[0] == 200
    stored.delete(oid_of(objects["lost"]))
    flipped = bytes([objects["flipped"][0] ^ 1]) + objects["flipped"][1:]
    stored.write(oid_of(objects["flipped"]), flipped)
    orphan = os.urandom(100)
    stored.write(oid_of(orphan), orphan)
    config = Config(data_dir=tmp_path / "data", **s3_bucket)
    async with offline(config) as hub:
        found = await examine(hub, repair=True, verify_objects=True, scratch_age=0)
    said = "\n".join(found.problems + found.fixed)
    assert f"object {oid_of(objects['lost'])}" in said and "is missing" in said
    assert f"object {oid_of(objects['flipped'])} does not hash to its oid" in said
    assert f"object {oid_of(orphan)} is stored but no model has it: removed" in said
    assert oid_of(objects["ok"]) not in said
    assert stored.read(oid_of(orphan)) is None and stored.read(oid_of(objects["flipped"])) is None
    assert stored.quarantined(oid_of(objects["flipped"]))

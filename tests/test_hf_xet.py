"""Xet uploads: huggingface_hub with hf_xet against a real amphub, and the storage API by hand.

The hand-made xorbs and shards follow the layouts of the Xet specification; what hf_xet
itself sends is covered by the uploads in test_hf_upload.py and here.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import os
import struct
import sys
import time
from pathlib import Path

import aiohttp
import lz4.frame
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from amphub import db
from amphub.db.core import fetch_all
from amphub.hf.xet import sweep_abandoned_xorbs
from amphub.hf.xetformat import (
    BOOKEND,
    SHARD_TAG,
    WITH_METADATA,
    MalformedXet,
    chunk_headers,
    hash_string,
    parse_shard,
    unpack,
)
from amphub.http import keys
from tests.conftest import Hub, git, start_hub, stored_content
from tests.test_hf_download import bearer, hf, hf_home  # noqa: F401  (hf_home: autouse)

MIB = 1024 * 1024


def raw_hash(text: str) -> bytes:
    """The 32 bytes behind a hash as the Xet API spells it."""
    return b"".join(bytes.fromhex(text[i : i + 16])[::-1] for i in range(0, 64, 16))


def group4(data: bytes) -> bytes:
    return b"".join(data[i::4] for i in range(4))


def xorb(chunks: list[bytes], compression: int = 0) -> bytes:
    """A serialized xorb: each chunk stored as-is (0), LZ4 (1) or byte-grouped LZ4 (2)."""
    out = []
    for chunk in chunks:
        stored = {
            0: lambda c: c,
            1: lz4.frame.compress,
            2: lambda c: lz4.frame.compress(group4(c)),
        }[compression](chunk)
        out.append(bytes([0]) + len(stored).to_bytes(3, "little"))
        out.append(bytes([compression]) + len(chunk).to_bytes(3, "little") + stored)
    return b"".join(out)


def shard(files: list[tuple[str, list[tuple[str, int, int, int]]]]) -> bytes:
    """A shard naming files: (sha256, [(xorb, start, end, size)]); no xorb listing."""
    out = SHARD_TAG + struct.pack("<QQ", 2, 0)
    for sha256, segments in files:
        out += bytes(32) + struct.pack("<II", WITH_METADATA, len(segments)) + bytes(8)
        for name, start, end, size in segments:
            out += raw_hash(name) + struct.pack("<IIII", 0, size, start, end)
        out += raw_hash(sha256) + bytes(16)
    out += BOOKEND + bytes(16)
    return out + BOOKEND + bytes(16)


def test_hashes_are_spelled_as_the_specification_says():
    # Each 8-byte word little-endian (the specification's example drops the "10").
    spelled = "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
    assert hash_string(bytes(range(32))) == spelled
    assert raw_hash(spelled) == bytes(range(32))


@pytest.mark.parametrize("compression", [0, 1, 2])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 1000, 65537])
def test_every_compression_unpacks_to_the_chunk(compression, size):
    chunk = os.urandom(size // 2) + bytes(size - size // 2)
    data = xorb([chunk, chunk[::-1]], compression)
    headers = list(chunk_headers(io.BytesIO(data), len(data)))
    assert len(headers) == 2
    first = data[headers[0].offset : headers[0].offset + headers[0].stored]
    assert unpack(headers[0], first) == chunk


def test_malformed_shards_are_refused():
    good = shard([("ab" * 32, [("cd" * 32, 0, 2, 10)])])
    assert parse_shard(good)[0].segments[0].xorb == "cd" * 32
    assert parse_shard(good)[0].sha256 == "ab" * 32
    for bad in (b"", b"x" * 100, good[:60], good[:-60], good.replace(SHARD_TAG, bytes(32))):
        with pytest.raises(MalformedXet):
            parse_shard(bad)
    empty_range = shard([("ab" * 32, [("cd" * 32, 2, 2, 10)])])
    with pytest.raises(MalformedXet, match="empty"):
        parse_shard(empty_range)


async def token(hub: Hub, model: str, user: str = "admin") -> dict:
    url = f"{hub.base}/api/models/team/{model}/xet-write-token/main"
    async with hub.session.get(url, headers=bearer(hub, user)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def cas(hub: Hub, grant: dict, method: str, path: str, data: bytes = b"") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {grant['accessToken']}"}
    async with hub.session.request(method, grant["casUrl"] + path, data=data, headers=headers) as r:
        return r.status, r.headers.get("X-Error-Message", await r.text())


def staged(hub: Hub, model: str) -> list[str]:
    folder = hub.data_dir / "repos" / "team" / f"{model}.git" / "xet"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def scratch(hub: Hub) -> list[str]:
    return sorted(p.name for p in (hub.data_dir / "tmp").iterdir())


async def test_the_write_token_follows_roles_and_names_the_model_storage(hub):
    await hub.space_and_model("team", "m", visibility="public")
    await hub.model("team", "hidden")
    grant = await token(hub, "m")
    assert grant["casUrl"] == f"{hub.base}/api/models/team/m/xet"
    assert grant["accessToken"] and grant["exp"] > 0
    await hub.user("bob")
    for user, model, status in [("bob", "m", 403), ("bob", "hidden", 404), ("", "m", 401)]:
        url = f"{hub.base}/api/models/team/{model}/xet-write-token/main"
        headers = bearer(hub, user) if user else {}
        async with hub.session.get(url, headers=headers) as resp:
            assert resp.status == status
    url = f"{hub.base}/api/models/team/m/xet-read-token/main"
    async with hub.session.get(url, headers=bearer(hub)) as resp:
        assert resp.status == 501 and "resolve" in resp.headers["X-Error-Message"]
    async with hub.session.get(url.replace("read", "write") + "?create_pr=1") as resp:
        assert resp.status == 501

    # The access token is good for its model only, and global deduplication knows nothing.
    assert (await cas(hub, grant, "GET", "/v1/chunks/default-merkledb/" + "ab" * 32))[0] == 404
    other = dict(grant, casUrl=grant["casUrl"].replace("/m/", "/hidden/"))
    status, _ = await cas(hub, other, "POST", "/v1/xorbs/default/" + "ab" * 32, xorb([b"x"]))
    assert status == 401 and staged(hub, "hidden") == []  # a token for another model


async def test_a_shard_is_rebuilt_into_checked_lfs_objects(hub, tmp_path):
    await hub.space_and_model("team", "m")
    grant = await token(hub, "m")
    chunks = [os.urandom(70_000), bytes(50_000), b"tail"]
    content = b"".join(chunks)
    oid = hashlib.sha256(content).hexdigest()
    name = "12" * 32
    assert await cas(hub, grant, "POST", f"/v1/xorbs/default/{name}", xorb(chunks, 1)) == (
        200,
        '{"was_inserted": true}',
    )
    assert staged(hub, "m") == [name]

    # A wrong sha256, a xorb never sent, chunks the xorb lacks: refused, nothing stored.
    wrong = shard([("ee" * 32, [(name, 0, 3, len(content))])])
    status, message = await cas(hub, grant, "POST", "/v1/shards", wrong)
    assert status == 400 and "does not match its oid" in message
    unknown = shard([(oid, [("34" * 32, 0, 3, len(content))])])
    status, message = await cas(hub, grant, "POST", "/v1/shards", unknown)
    assert status == 400 and "was not uploaded to team/m" in message
    beyond = shard([(oid, [(name, 0, 4, len(content))])])
    assert (await cas(hub, grant, "POST", "/v1/shards", beyond))[0] == 400
    store = hub.server.app[keys.HUB].objects
    assert await store.size(oid) is None and await store.size("ee" * 32) is None
    assert scratch(hub) == []

    good = shard([(oid, [(name, 0, 2, 120_000), (name, 2, 3, 4)])])
    assert await cas(hub, grant, "POST", "/v1/shards", good) == (200, '{"result": 1}')
    assert await stored_content(store, oid) == content
    linked = await db.linked_object_sizes(hub.server.app[keys.HUB].db, "team", "m", [oid])
    assert linked == {oid: len(content)}
    assert staged(hub, "m") == []  # every chunk is in the object now

    # A later shard may name those chunks again: they are read back from the object.
    again = b"".join(chunks[1:])
    second = hashlib.sha256(again).hexdigest()
    later = shard([(second, [(name, 1, 3, len(again))])])
    assert (await cas(hub, grant, "POST", "/v1/shards", later))[0] == 200
    assert await stored_content(store, second) == again

    # The xorb sent again for a file the model holds: taken in, then dropped again.
    assert (await cas(hub, grant, "POST", f"/v1/xorbs/default/{name}", xorb(chunks, 2)))[0] == 200
    assert staged(hub, "m") == [name]
    assert (await cas(hub, grant, "POST", "/v1/shards", good))[0] == 200
    assert staged(hub, "m") == [] and await stored_content(store, oid) == content


async def test_xorbs_no_shard_named_for_a_day_are_swept(hub):
    await hub.space_and_model("team", "m")
    grant = await token(hub, "m")
    for name in ("ab" * 32, "cd" * 32):
        assert (await cas(hub, grant, "POST", f"/v1/xorbs/default/{name}", xorb([b"x"])))[0] == 200
    old = hub.data_dir / "repos" / "team" / "m.git" / "xet" / ("ab" * 32)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    assert await sweep_abandoned_xorbs(hub.server.app[keys.HUB]) == 1
    assert staged(hub, "m") == ["cd" * 32]


async def test_malformed_and_interrupted_xorbs_leave_nothing(hub):
    await hub.space_and_model("team", "m")
    grant = await token(hub, "m")
    path = "/v1/xorbs/default/" + "56" * 32
    for body in (b"garbage", xorb([b"abc"])[:-1], xorb([b"abc"]).replace(b"\x00", b"\x07", 1)):
        status, message = await cas(hub, grant, "POST", path, body)
        assert status == 400, message
    bad_lz4 = bytearray(xorb([os.urandom(1000)], 1))
    bad_lz4[20:40] = bytes(20)
    assert (await cas(hub, grant, "POST", path, bytes(bad_lz4)))[0] == 200  # kept whole
    status, message = await cas(
        hub, grant, "POST", "/v1/shards", shard([("ab" * 32, [("56" * 32, 0, 1, 1000)])])
    )
    assert status == 400 and "LZ4" in message
    status, _ = await cas(hub, grant, "POST", "/v1/xorbs/default/NOT-A-HASH", xorb([b"a"]))
    assert status in (400, 404)

    # hf_xet fills a xorb with 64 MiB of chunk data, which its headers take past 64 MiB.
    full = xorb([os.urandom(64 * 1024)] * 1024)
    assert len(full) > 64 * MIB
    assert (await cas(hub, grant, "POST", "/v1/xorbs/default/" + "9a" * 32, full))[0] == 200
    status, message = await cas(hub, grant, "POST", path, full + bytes(MIB))
    assert status == 413 and "at most" in message

    # A connection cut halfway through a xorb: nothing kept, no scratch file left.
    host, port = hub.server.host, hub.server.port
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"POST /api/models/team/m/xet/v1/xorbs/default/{'78' * 32} HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {grant['accessToken']}\r\n"
        f"Content-Length: {4 * MIB}\r\n\r\n"
    )
    writer.write(request.encode() + os.urandom(MIB))
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    deadline = asyncio.get_running_loop().time() + 30
    while scratch(hub) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert scratch(hub) == [] and "78" * 32 not in staged(hub, "m")


async def upload_in_a_new_process(hub: Hub, path: Path, repo_id: str) -> None:
    """upload_file as a user's script runs it: hf_xet loads its cache of earlier uploads."""
    script = (
        "import sys; from huggingface_hub import HfApi;"
        " HfApi(endpoint=sys.argv[1], token=sys.argv[2]).upload_file("
        "path_or_fileobj=sys.argv[3], path_in_repo=sys.argv[4], repo_id=sys.argv[5])"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        hub.base,
        hub.admin_key,
        str(path),
        path.name,
        repo_id,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def test_a_later_upload_reuses_chunks_the_client_sent_before(hub, tmp_path):
    await hub.space("team")
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    await hf(api.create_repo, "team/w")
    first = os.urandom(3 * MIB)
    second = first + os.urandom(MIB)
    (tmp_path / "a.bin").write_bytes(first)
    await upload_in_a_new_process(hub, tmp_path / "a.bin", "team/w")
    assert staged(hub, "w") == []  # the first xorb is gone: its chunks are in a.bin's object
    (tmp_path / "b.bin").write_bytes(second)
    await upload_in_a_new_process(hub, tmp_path / "b.bin", "team/w")
    # hf_xet sent only the new megabyte; the rest of b.bin was read from a.bin's object.
    sent = await fetch_all(
        hub.server.app[keys.HUB].db,
        "SELECT sum(length) FROM xet_chunks WHERE oid = ?",
        hashlib.sha256(second).hexdigest(),
    )
    assert 0 < sent[0][0] < 2 * MIB

    await git("lfs", "install", "--skip-repo")
    work = tmp_path / "clone"
    await git("clone", "-q", hub.remote("team", "w"), str(work))
    assert (work / "a.bin").read_bytes() == first and (work / "b.bin").read_bytes() == second
    await git("lfs", "fsck", cwd=work)


async def test_no_room_refuses_fast_and_changes_nothing(tmp_path):
    server, key = await start_hub(tmp_path / "data", quota_unit=MIB)
    try:
        async with aiohttp.ClientSession() as session:
            hub = Hub(server, session, key, tmp_path / "data")
            await hub.space("team", quota=3 * MIB)
            await no_room(hub)
    finally:
        await server.close()


async def no_room(hub: Hub) -> None:
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    await hf(api.create_repo, "team/q")
    upload = functools.partial(api.upload_file, repo_id="team/q")
    await hf(upload, path_or_fileobj=os.urandom(2 * MIB), path_in_repo="w.bin")
    head = (await hf(api.model_info, "team/q")).sha
    # Same path, same size: the early check lets it through, Xet's storage refuses it
    # with a status hf_xet does not retry.
    with pytest.raises(ConnectionError, match="403"):
        await hf(upload, path_or_fileobj=os.urandom(2 * MIB), path_in_repo="w.bin")
    assert (await hf(api.model_info, "team/q")).sha == head
    assert staged(hub, "q") == []
    # A new path: refused before any byte is sent, with the quota's sentence.
    with pytest.raises(HfHubHTTPError) as early:
        await hf(upload, path_or_fileobj=os.urandom(2 * MIB), path_in_repo="x.bin")
    assert early.value.response.status_code == 507 and "over its quota" in str(early.value)


async def test_a_file_larger_than_a_xorb_arrives_whole(hub, tmp_path):
    await hub.space("team")
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    await hf(api.create_repo, "team/large")
    # Random bytes (stored as-is) then zeros (LZ4): more than one 64 MiB xorb.
    data = os.urandom(70 * MIB) + bytes(8 * MIB)
    (tmp_path / "large.bin").write_bytes(data)
    upload = functools.partial(api.upload_file, repo_id="team/large")
    await hf(upload, path_or_fileobj=str(tmp_path / "large.bin"), path_in_repo="large.bin")
    oid = hashlib.sha256(data).hexdigest()
    assert await hub.server.app[keys.HUB].objects.size(oid) == len(data)
    xorbs = await fetch_all(
        hub.server.app[keys.HUB].db,
        "SELECT count(DISTINCT xorb) FROM xet_chunks WHERE oid = ?",
        oid,
    )
    assert xorbs[0][0] >= 2
    info = await hf(api.model_info, "team/large", files_metadata=True)
    assert {s.rfilename: s.lfs.sha256 for s in info.siblings if s.lfs} == {"large.bin": oid}

"""Pushes that would store a file too large for git, or a delta chain too deep, are refused."""

from __future__ import annotations

import hashlib
import os
import zlib
from base64 import b64encode
from pathlib import Path

from dulwich.object_format import SHA1
from dulwich.pack import OFS_DELTA, REF_DELTA, pack_object_header
from dulwich.protocol import pkt_line

from tests.conftest import Hub, git, running_hub

MIB = 1024 * 1024
BASE_SIZE = 16 * MIB - 1  # the largest copy a delta instruction makes
KINDS = {1: b"commit", 2: b"tree", 3: b"blob"}


def object_id(kind: int, data: bytes) -> bytes:
    return hashlib.sha1(KINDS[kind] + b" %d\0" % len(data) + data).digest()


def varint(size: int) -> bytes:
    out = bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out)


def copy_all(base_size: int, result_size: int, copies: int, insert: bytes = b"") -> bytes:
    """A delta that copies the whole base `copies` times, then inserts `insert`."""
    size = base_size.to_bytes(3, "little")
    copy = bytes([0x80 | 0x70]) + size  # offset 0, three size bytes
    tail = bytes([len(insert)]) + insert if insert else b""
    return varint(base_size) + varint(result_size) + copy * copies + tail


def build_pack(objects: list[tuple[int, bytes, int | None]]) -> bytes:
    """A pack of (kind, data, index of the OFS_DELTA base or None) objects."""
    out = bytearray(b"PACK" + (2).to_bytes(4, "big") + len(objects).to_bytes(4, "big"))
    offsets: list[int] = []
    for kind, data, base in objects:
        offsets.append(len(out))
        if base is None:
            header = pack_object_header(kind, None, len(data), SHA1)
        else:
            header = pack_object_header(OFS_DELTA, offsets[-1] - offsets[base], len(data), SHA1)
        out += bytes(header) + zlib.compress(data, 1)
    return bytes(out + hashlib.sha1(out).digest())


def commit_on(parent: str, tree: bytes) -> bytes:
    person = b"Dev <dev@example.com> 1700000000 +0000"
    return b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\nbig\n" % (
        tree.hex().encode(),
        parent.encode(),
        person,
        person,
    )


async def push_pack(hub: Hub, old: str, new: bytes, pack: bytes) -> bytes:
    """POST a pack to receive-pack as git does; the whole answer."""
    command = b"%s %s refs/heads/master\0report-status side-band-64k" % (
        old.encode(),
        new.hex().encode(),
    )
    url = hub.base + "/team/m1.git/git-receive-pack"
    async with hub.session.post(
        url,
        data=pkt_line(command) + pkt_line(None) + pack,
        headers={
            "Content-Type": "application/x-git-receive-pack-request",
            "Authorization": "Basic " + b64encode(f"admin:{hub.admin_key}".encode()).decode(),
        },
    ) as resp:
        assert resp.status == 200
        return await resp.read()


async def master(hub: Hub) -> str:
    return (await git("ls-remote", hub.remote("team", "m1"), "refs/heads/master")).stdout.split()[0]


def stored_packs(data: Path) -> list[str]:
    objects = data / "repos" / "team" / "m1.git" / "objects"
    return sorted(p.name for p in objects.rglob("*") if p.is_file())


async def test_delta_with_a_huge_result_is_refused_before_it_is_built(tmp_path):
    async with running_hub(tmp_path / "data", max_git_file_size=20 * MIB) as hub:
        await hub.space_and_model("team", "m1")
        old, before = await master(hub), stored_packs(hub.data_dir)
        used = (await hub.call("GET", "/api/v1/spaces/team"))[1]["used"]
        base = b"\0" * BASE_SIZE
        delta = copy_all(BASE_SIZE, 64 * BASE_SIZE, 64)
        digest = hashlib.sha1(b"blob %d\0" % (64 * BASE_SIZE))
        for _ in range(64):
            digest.update(base)
        tree = b"100644 base.bin\0" + object_id(3, base) + b"100644 weights.bin\0" + digest.digest()
        commit = commit_on(old, object_id(2, tree))
        pack = build_pack([(1, commit, None), (2, tree, None), (3, base, None), (7, delta, 2)])
        assert len(pack) < 100_000

        answer = await push_pack(hub, old, object_id(1, commit), pack)

        assert b"unpack file too large for git" in answer
        assert b"weights.bin (1024 MiB) is larger than the 20.0 MiB" in answer
        assert b'git lfs track "weights.bin"' in answer
        assert await master(hub) == old and stored_packs(hub.data_dir) == before
        assert (await hub.call("GET", "/api/v1/spaces/team"))[1]["used"] == used


async def test_plain_file_over_the_limit_is_refused_with_git_lfs_track(tmp_path):
    async with running_hub(tmp_path / "data", max_git_file_size=64 * 1024) as hub:
        await hub.space_and_model("team", "m1")
        work = tmp_path / "w"
        await git("clone", "-q", hub.remote("team", "m1"), str(work))
        before = stored_packs(hub.data_dir)
        (work / "data").mkdir()
        (work / "data" / "big.dat").write_bytes(os.urandom(200 * 1024))
        (work / "small.txt").write_text("small")
        await git("add", ".", cwd=work)
        await git("commit", "-q", "-m", "big", cwd=work)

        result = await git("push", "origin", "master", cwd=work, check=False)

        assert result.returncode != 0
        assert "remote: data/big.dat (200 KiB) is larger than the 64.0 KiB" in result.stderr
        assert 'track it with `git lfs track "data/big.dat"`' in result.stderr
        assert stored_packs(hub.data_dir) == before


async def test_delta_chain_deeper_than_the_limit_is_refused(hub, model_repo):
    old, before = await master(hub), stored_packs(hub.data_dir)
    base = b"x" * 100
    objects: list[tuple[int, bytes, int | None]] = [(3, base, None)]
    for depth in range(1, 1002):
        objects.append((7, copy_all(99 + depth, 100 + depth, 1, b"y"), len(objects) - 1))
    tree = b"100644 base.bin\0" + object_id(3, base)
    commit = commit_on(old, object_id(2, tree))
    # copy_all copies 3 size bytes of the base: fix each delta's base size to its base's.
    objects = [(1, commit, None), (2, tree, None)] + [
        (kind, data, None if base is None else base + 2) for kind, data, base in objects
    ]

    answer = await push_pack(hub, old, object_id(1, commit), build_pack(objects))

    assert b"unpack delta chain too deep" in answer
    assert await master(hub) == old and stored_packs(hub.data_dir) == before


async def test_delta_whose_distance_is_another_objects_offset_is_stored(hub, model_repo):
    # The blob takes 12 bytes, as the pack's header does: the delta's distance back (12)
    # is also the offset of the tree, which a delta must not be read against.
    old = await master(hub)
    blob = b"aaaaa"
    tree = b"100644 x\0" + object_id(3, blob)
    commit = commit_on(old, object_id(2, tree))
    delta = copy_all(5, 6, 1, b"y")
    pack = build_pack([(2, tree, None), (3, blob, None), (7, delta, 1), (1, commit, None)])

    answer = await push_pack(hub, old, object_id(1, commit), pack)

    assert b"unpack ok" in answer
    assert await master(hub) == object_id(1, commit).hex()


async def test_file_built_by_a_chain_of_deltas_reads_whole(hub, model_repo):
    old = await master(hub)
    base = os.urandom(3 * MIB // 2)
    objects: list[tuple[int, bytes, int | None]] = [(3, base, None)]
    data = base
    for extra in (b"a", b"bc", b"def"):
        objects.append((7, copy_all(len(data), len(data) + len(extra), 1, extra), len(objects) - 1))
        data += extra
    tree = b"100644 big.dat\0" + object_id(3, data)
    commit = commit_on(old, object_id(2, tree))
    pack = build_pack([*objects, (2, tree, None), (1, commit, None)])
    assert b"unpack ok" in await push_pack(hub, old, object_id(1, commit), pack)

    url = hub.base + "/api/v1/models/team/m1/blob/master/big.dat"
    async with hub.session.get(url, headers={"Authorization": f"Bearer {hub.admin_key}"}) as resp:
        assert resp.status == 200 and await resp.read() == data
    status, tree_json = await hub.call("GET", "/api/v1/models/team/m1/tree/master")
    assert {e["path"]: e["size"] for e in tree_json["entries"]}["big.dat"] == len(data)


async def test_pack_with_a_tree_git_cannot_read_is_refused_and_nothing_stored(hub, model_repo):
    old, before = await master(hub), stored_packs(hub.data_dir)
    tree = b"10x644 a\0" + b"\1" * 20
    commit = commit_on(old, object_id(2, tree))

    answer = await push_pack(
        hub, old, object_id(1, commit), build_pack([(2, tree, None), (1, commit, None)])
    )

    assert b"unpack error: invalid mode" in answer
    assert await master(hub) == old and stored_packs(hub.data_dir) == before


async def test_pack_with_a_wrong_checksum_is_refused_and_nothing_stored(hub, model_repo):
    old, before = await master(hub), stored_packs(hub.data_dir)
    blob = b"data"
    tree = b"100644 a\0" + object_id(3, blob)
    commit = commit_on(old, object_id(2, tree))
    pack = build_pack([(3, blob, None), (2, tree, None), (1, commit, None)])

    answer = await push_pack(hub, old, object_id(1, commit), pack[:-1] + bytes([pack[-1] ^ 1]))

    assert b"unpack error" in answer and b"unpack ok" not in answer
    assert await master(hub) == old and stored_packs(hub.data_dir) == before


async def test_ref_delta_on_a_base_later_in_the_pack_is_stored(hub, model_repo):
    old = await master(hub)
    base = b"0123456789" * 10
    data = base + b"!"
    tree = b"100644 a\0" + object_id(3, data) + b"100644 b\0" + object_id(3, base)
    commit = commit_on(old, object_id(2, tree))
    pack = bytearray(b"PACK" + (2).to_bytes(4, "big") + (4).to_bytes(4, "big"))
    delta = copy_all(len(base), len(data), 1, b"!")
    pack += bytes(pack_object_header(REF_DELTA, object_id(3, base), len(delta), SHA1))
    pack += zlib.compress(delta)
    for kind, text in ((3, base), (2, tree), (1, commit)):
        pack += bytes(pack_object_header(kind, None, len(text), SHA1)) + zlib.compress(text)
    pack += hashlib.sha1(pack).digest()

    assert b"unpack ok" in await push_pack(hub, old, object_id(1, commit), bytes(pack))

    url = hub.base + "/api/v1/models/team/m1/blob/master/a"
    async with hub.session.get(url, headers={"Authorization": f"Bearer {hub.admin_key}"}) as resp:
        assert resp.status == 200 and await resp.read() == data


async def test_ref_delta_on_an_object_both_stored_and_in_the_pack_clones_whole(
    hub, model_repo, tmp_path
):
    # A sync retried after a crash sends again objects the first try stored unreferenced.
    old = await master(hub)
    base = b"0123456789" * 10
    tree = b"100644 b\0" + object_id(3, base)
    first = commit_on(old, object_id(2, tree))
    pack = build_pack([(3, base, None), (2, tree, None), (1, first, None)])
    assert b"unpack ok" in await push_pack(hub, old, object_id(1, first), pack)

    data = base + b"!"
    tree = b"100644 a\0" + object_id(3, data) + b"100644 b\0" + object_id(3, base)
    second = commit_on(object_id(1, first).hex(), object_id(2, tree))
    delta = copy_all(len(base), len(data), 1, b"!")
    out = bytearray(b"PACK" + (2).to_bytes(4, "big") + (4).to_bytes(4, "big"))
    out += bytes(pack_object_header(REF_DELTA, object_id(3, base), len(delta), SHA1))
    out += zlib.compress(delta)
    for kind, text in ((3, base), (2, tree), (1, second)):
        out += bytes(pack_object_header(kind, None, len(text), SHA1)) + zlib.compress(text)
    out += hashlib.sha1(out).digest()
    head = object_id(1, first).hex()
    assert b"unpack ok" in await push_pack(hub, head, object_id(1, second), bytes(out))

    copy = tmp_path / "copy"
    await git("clone", "-q", "--bare", hub.remote("team", "m1"), str(copy))
    await git("fsck", "--strict", cwd=copy)

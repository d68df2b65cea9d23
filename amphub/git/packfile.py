"""Stored packs read in place, and packs written from them with stored objects copied."""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import sys
import zlib
from array import array
from binascii import unhexlify
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from dulwich.object_format import SHA1
from dulwich.object_store import BaseObjectStore
from dulwich.objects import RawObjectID
from dulwich.pack import OFS_DELTA, REF_DELTA, FilePackIndex, Pack, pack_object_header

from amphub.storage.git_objects import object_header

LOOSE_NAME = re.compile(r"[0-9a-f]{38}")
COPY_CHUNK = 1024 * 1024

# Object ids are binary (20 bytes) here and in `reach`: dulwich's `RawObjectID`.
Load = Callable[[bytes], tuple[int, bytes]]


def raw_loader(store: BaseObjectStore) -> Load:
    """`store.get_raw`, which takes the binary ids that `Load` is given."""
    return cast(Load, store.get_raw)


# --- stored objects -----------------------------------------------------------------


class PackFile:
    """A stored pack, mapped; with `indexed`, its object ids and offsets in offset order."""

    def __init__(self, pack: Pack, indexed: bool = False) -> None:
        self.pack = pack
        with open(index_path(pack).removesuffix(".idx") + ".pack", "rb") as file:
            self.data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.shas: list[bytes] = []
        self.offsets = array("Q")
        self.positions: dict[int, int] = {}
        self.known: dict[int, bytes] = {}
        self._by_sha: dict[bytes, int] | None = None
        self.kinds = bytearray()  # by position, filled by `reach.read_all_objects`; 0 while unknown
        self.ref_bases: set[bytes] = set()
        if indexed:
            self.shas, self.offsets = read_index(pack)
            self.positions = dict(zip(self.offsets, range(len(self.shas)), strict=True))
            self.offsets.append(len(self.data) - 20)
            self.kinds = bytearray(len(self.shas))

    def __enter__(self) -> PackFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.data.close()

    def position(self, offset: int) -> int:
        """The position of the object at `offset` among the indexed objects."""
        return self.positions[offset]

    def sha_at(self, offset: int) -> bytes | None:
        """The id of the object at `offset`, if known."""
        if not self.shas:
            return self.known.get(offset)
        pos = self.positions.get(offset)
        return None if pos is None else self.shas[pos]

    def locate(self, sha: bytes) -> int | None:
        """The offset of an object in this pack, or None; remembered for `sha_at`."""
        if self.shas:
            pos = self._positions_by_sha().get(sha)
            return None if pos is None else self.offsets[pos]
        try:
            offset = self.pack.index.object_offset(RawObjectID(sha))
        except KeyError:
            return None
        self.known[offset] = sha
        return offset

    def _positions_by_sha(self) -> dict[bytes, int]:
        if self._by_sha is None:
            self._by_sha = dict(zip(self.shas, range(len(self.shas)), strict=True))
        return self._by_sha

    def end_of(self, offset: int, start: int) -> int:
        """Where the object at `offset`, whose data starts at `start`, ends."""
        if self.shas:
            return self.offsets[self.position(offset) + 1]
        return compressed_end(self.data, start)


def index_path(pack: Pack) -> str:
    """Where a stored pack's index is (a store on disk has only index files)."""
    index = pack.index
    if not isinstance(index, FilePackIndex):
        raise TypeError(f"{pack!r} has no index file")
    return index.path


def read_index(pack: Pack) -> tuple[list[bytes], array[int]]:
    """Ids and offsets of a pack's objects, in offset order."""
    with open(index_path(pack), "rb") as file:
        index = file.read()
    if index[:8] != b"\xfftOc\x00\x00\x00\x02":  # not version 2: let dulwich read it
        entries = sorted((offset, sha) for sha, offset, _ in pack.index.iterentries())
        return [sha for _, sha in entries], array("Q", [offset for offset, _ in entries])
    count = int.from_bytes(index[1028:1032], "big")
    names = 1032
    table = names + 24 * count
    small = array("I", index[table : table + 4 * count])
    if small.itemsize != 4:
        raise RuntimeError("array('I') is not 32 bits here")
    if sys.byteorder == "little":
        small.byteswap()
    offsets = array("Q", small)
    large = table + 4 * count
    for i, offset in enumerate(small):
        if offset & 0x80000000:  # an index into the table of 64-bit offsets
            at = large + 8 * (offset & 0x7FFFFFFF)
            offsets[i] = int.from_bytes(index[at : at + 8], "big")
    order = sorted(range(count), key=offsets.__getitem__)
    shas = [index[names + 20 * i : names + 20 * i + 20] for i in order]
    return shas, array("Q", [offsets[i] for i in order])


def compressed_end(data: mmap.mmap, start: int) -> int:
    """The end of the zlib stream that starts at `start`."""
    inflater = zlib.decompressobj()
    pos = start
    while not inflater.eof:
        chunk = data[pos : pos + 65536]
        if not chunk:
            raise ValueError("pack ends inside an object")
        inflater.decompress(chunk)
        pos += len(chunk)
    return pos - len(inflater.unused_data)


def loose_ids(objects_dir: Path) -> list[bytes]:
    """Ids of the loose objects of a store."""
    return [
        unhexlify(path.parent.name + path.name)
        for path in objects_dir.glob("[0-9a-f][0-9a-f]/*")
        if LOOSE_NAME.fullmatch(path.name)
    ]


# --- writing the pack ---------------------------------------------------------------


class PackWriter:
    """Writes a pack of `count` objects to `out`, copying stored objects where it can."""

    def __init__(
        self,
        out: Callable[[bytes], None],
        count: int,
        load: Load,
        sendable: Callable[[bytes], bool],
    ) -> None:
        self._out = out
        self._hash = hashlib.sha1()
        self._load = load
        self._sendable = sendable
        self._written: dict[tuple[int, int], int] = {}  # (pack, offset) -> offset in output
        self.offset = 0
        self._emit(b"PACK" + (2).to_bytes(4, "big") + count.to_bytes(4, "big"))

    def _emit(self, data: bytes) -> None:
        self._hash.update(data)
        self._out(data)
        self.offset += len(data)

    def _emit_range(self, data: mmap.mmap, start: int, end: int) -> None:
        """Emit stored bytes a chunk at a time: a large object is never one copy in memory."""
        for at in range(start, end, COPY_CHUNK):
            self._emit(data[at : min(at + COPY_CHUNK, end)])

    def copy_objects_of(self, pack: BinaryIO) -> None:
        """Copy the objects of a pack file written before (not a stored pack: no offsets kept)."""
        end = os.fstat(pack.fileno()).st_size - 20
        pack.seek(12)
        while (left := end - pack.tell()) > 0 and (chunk := pack.read(min(COPY_CHUNK, left))):
            self._emit(chunk)

    def copy_pack(self, pack: PackFile) -> None:
        """Copy a whole pack's objects: their deltas stay valid as they are."""
        self._emit_range(pack.data, 12, len(pack.data) - 20)

    def copy_object(self, pack: PackFile, offset: int, sha: bytes) -> None:
        """Copy one stored object, re-pointing or expanding a delta whose base moved."""
        here = self.offset
        _, size, start, base = object_header(pack.data, offset)
        end = pack.end_of(offset, start)
        if isinstance(base, int):  # OFS_DELTA
            base_at = self._written.get((id(pack), base))
            if base_at is not None and here - base_at == offset - base:
                self._emit_range(pack.data, offset, end)
            elif base_at is not None:
                self._emit_delta(size, here - base_at, pack.data[start:end])
            elif (base_sha := pack.sha_at(base)) is not None and self._sendable(base_sha):
                self._emit_delta(size, base_sha, pack.data[start:end])
            else:
                self.write_whole(sha)
        elif isinstance(base, bytes) and not self._sendable(base):  # REF_DELTA
            self.write_whole(sha)
        else:
            self._emit_range(pack.data, offset, end)
        self._written[(id(pack), offset)] = here

    def _emit_delta(self, size: int, base: int | bytes, compressed: bytes) -> None:
        kind = OFS_DELTA if isinstance(base, int) else REF_DELTA
        self._emit(bytes(pack_object_header(kind, base, size, SHA1)) + compressed)

    def write_whole(self, sha: bytes) -> None:
        """Write an object in full, compressed anew."""
        kind, text = self._load(sha)
        self._emit(bytes(pack_object_header(kind, None, len(text), SHA1)) + zlib.compress(text))

    def finish(self) -> None:
        """Write the trailing checksum."""
        self._out(self._hash.digest())


def write_clone_pack(
    out: Callable[[bytes], None], packs: list[PackFile], load: Load, send: set[bytes]
) -> None:
    """Write `send`: each object from the largest pack that has it, then the loose ones.

    Claiming from the largest pack first lets it be copied whole; a pushed pack repeats
    the bases of its deltas (dulwich completes thin packs so), and those are claimed there.
    """
    packs = sorted(packs, key=lambda pack: len(pack.shas), reverse=True)
    claimed: set[bytes] = set()
    chosen = []
    for pack in packs:
        positions = [i for i, sha in enumerate(pack.shas) if sha in send and sha not in claimed]
        claimed.update(pack.shas[i] for i in positions)
        chosen.append(positions)
    writer = PackWriter(out, len(send), load, send.__contains__)
    for pack, positions in zip(packs, chosen, strict=True):
        if len(positions) == len(pack.shas) and pack.ref_bases <= send:
            writer.copy_pack(pack)
            continue
        for i in positions:
            writer.copy_object(pack, pack.offsets[i], pack.shas[i])
    for sha in sorted(send - claimed):
        writer.write_whole(sha)
    writer.finish()


def write_fetch_pack(
    out: Callable[[bytes], None],
    packs: list[PackFile],
    load: Load,
    send: set[bytes],
    has: set[bytes],
    after: tuple[BinaryIO, int] | None = None,
) -> None:
    """Write `send` as a thin pack: deltas on objects in `has` stay deltas.

    With `after` (a pack file written before and its object count), its objects come
    first: a pack of those and `send`, not thin if they are the objects `has` names.
    """
    located: list[list[tuple[int, bytes]]] = [[] for _ in packs]
    loose = []
    for sha in send:
        for i, pack in enumerate(packs):
            offset = pack.locate(sha)
            if offset is not None:
                located[i].append((offset, sha))
                break
        else:
            loose.append(sha)
    # So that deltas on objects the client has can name their base; after a whole pack
    # `has` is every object of it, too many to look up: such deltas are written whole.
    for pack in packs if after is None else []:
        for sha in has:
            pack.locate(sha)
    count = len(send) + (after[1] if after else 0)
    writer = PackWriter(out, count, load, lambda sha: sha in send or sha in has)
    if after:
        writer.copy_objects_of(after[0])
    for pack, objects in zip(packs, located, strict=True):
        for offset, sha in sorted(objects):
            writer.copy_object(pack, offset, sha)
    for sha in loose:
        writer.write_whole(sha)
    writer.finish()

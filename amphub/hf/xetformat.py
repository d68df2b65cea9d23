"""Xet's two upload formats, read: xorbs (compressed chunks) and shards (files as chunk ranges).

Only what a server needs to rebuild uploaded files is read; hashes of chunks and xorbs are
not recomputed, because every rebuilt file is checked against its sha256 before it is
stored. Layouts are those of the Xet protocol specification (huggingface/xet-core, spec/).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import lz4.frame

HASH = re.compile(r"[0-9a-f]{64}")
# Up to 64 MiB of chunk data, plus an 8-byte header per chunk (hf_xet fills xorbs to the
# data limit, so they are a little larger serialized).
MAX_XORB = 65 * 1024 * 1024
MAX_CHUNK = 128 * 1024
CHUNK_HEADER = 8
SHARD_TAG = b"HFRepoMetaData\x00UigEj{\x81W\x83\xa5\xbd\xd9\\\xcd\xd1J\xa9"
SHARD_VERSION = 2
ENTRY = 48
BOOKEND = b"\xff" * 32
WITH_VERIFICATION = 1 << 31
WITH_METADATA = 1 << 30
NO_COMPRESSION, LZ4, BYTE_GROUPING_LZ4 = 0, 1, 2


class MalformedXet(ValueError):
    """Bytes that are not a well-formed xorb or shard."""


def hash_string(raw: bytes) -> str:
    """A 32-byte Xet hash as the protocol spells it: each 8-byte word little-endian, in hex."""
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, 32, 8))


def check_hash(text: str) -> str:
    """The hash, if it is 64 lowercase hex characters; checked before any path is built."""
    if not HASH.fullmatch(text):
        raise MalformedXet(f"invalid Xet hash {text[:80]!r}: expected 64 lowercase hex characters")
    return text


@dataclass(frozen=True)
class Segment:
    """Chunks [start, end) of a xorb, `size` bytes once decompressed."""

    xorb: str
    start: int
    end: int
    size: int


@dataclass(frozen=True)
class ShardFile:
    """A file of a shard: its sha256 and the chunk ranges it is made of, in order."""

    sha256: str
    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        """The file's length."""
        return sum(s.size for s in self.segments)


def _entries(data: bytes, at: int, count: int) -> int:
    end = at + count * ENTRY
    if end > len(data):
        raise MalformedXet("the shard ends in the middle of an entry")
    return end


def _file(data: bytes, at: int) -> tuple[ShardFile | None, int]:
    """The file whose header is at `at` (None at the bookend), and where the next one starts."""
    _entries(data, at, 1)
    if data[at : at + 32] == BOOKEND:
        return None, at + ENTRY
    flags, count = struct.unpack_from("<II", data, at + 32)
    at += ENTRY
    segments = []
    for entry in range(at, _entries(data, at, count), ENTRY):
        start, end = struct.unpack_from("<II", data, entry + 40)
        (size,) = struct.unpack_from("<I", data, entry + 36)
        if not start < end:
            raise MalformedXet(f"a chunk range [{start}, {end}) of the shard is empty")
        segments.append(Segment(hash_string(data[entry : entry + 32]), start, end, size))
    at += count * ENTRY
    if flags & WITH_VERIFICATION:
        at = _entries(data, at, count)
    if not flags & WITH_METADATA:
        raise MalformedXet("each file of an uploaded shard needs its sha256 (metadata extension)")
    _entries(data, at, 1)
    return ShardFile(hash_string(data[at : at + 32]), tuple(segments)), at + ENTRY


def parse_shard(data: bytes) -> list[ShardFile]:
    """The files an uploaded shard describes (its xorb listing and footer are not needed)."""
    if len(data) < ENTRY or data[:32] != SHARD_TAG:
        raise MalformedXet("the body is not a Xet shard")
    (version,) = struct.unpack_from("<Q", data, 32)
    if version != SHARD_VERSION:
        raise MalformedXet(f"shard version {version} is not supported (only {SHARD_VERSION})")
    files: list[ShardFile] = []
    at = ENTRY
    while True:
        file, at = _file(data, at)
        if file is None:
            return files
        files.append(file)


@dataclass(frozen=True)
class ChunkHeader:
    """Where a chunk's stored bytes are, how they are compressed and how long they unpack."""

    offset: int
    stored: int
    compression: int
    size: int


def _header(raw: bytes, offset: int) -> ChunkHeader:
    if len(raw) < CHUNK_HEADER or raw[0] != 0:
        raise MalformedXet(f"no chunk header of version 0 at byte {offset} of the xorb")
    stored = int.from_bytes(raw[1:4], "little")
    size = int.from_bytes(raw[5:8], "little")
    if raw[4] not in (NO_COMPRESSION, LZ4, BYTE_GROUPING_LZ4) or size > MAX_CHUNK:
        raise MalformedXet(f"the chunk at byte {offset} of the xorb is not one Xet writes")
    return ChunkHeader(offset + CHUNK_HEADER, stored, raw[4], size)


def chunk_headers(xorb: BinaryIO, length: int) -> Iterator[ChunkHeader]:
    """Every chunk of a serialized xorb of `length` bytes, read header by header."""
    offset = 0
    while offset < length:
        xorb.seek(offset)
        header = _header(xorb.read(CHUNK_HEADER), offset)
        offset = header.offset + header.stored
        if offset > length:
            raise MalformedXet("the xorb ends in the middle of a chunk")
        yield header


def unpack(header: ChunkHeader, stored: bytes) -> bytes:
    """A chunk's bytes from its stored form; refuses anything that unpacks to another size."""
    if header.compression == NO_COMPRESSION:
        data = stored
    else:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        try:
            data = decompressor.decompress(stored, max_length=header.size + 1)
        except RuntimeError:
            raise MalformedXet("a chunk of the xorb is not valid LZ4") from None
    if len(data) != header.size:
        raise MalformedXet("a chunk of the xorb does not unpack to its stated size")
    if header.compression == BYTE_GROUPING_LZ4:
        data = _ungroup(data)
    return data


def _ungroup(grouped: bytes) -> bytes:
    """Undo byte grouping: byte i of each 4 came from group i, the groups stored one by one."""
    size = len(grouped)
    out = bytearray(size)
    at = 0
    for group in range(4):
        length = size // 4 + (group < size % 4)
        out[group::4] = grouped[at : at + length]
        at += length
    return bytes(out)


def read_chunks(xorb: BinaryIO, length: int, start: int, end: int) -> Iterator[bytes]:
    """Chunks [start, end) of a stored xorb, unpacked, in order."""
    count = 0
    for index, header in enumerate(chunk_headers(xorb, length)):
        if index >= end:
            break
        if index >= start:
            xorb.seek(header.offset)
            yield unpack(header, xorb.read(header.stored))
            count += 1
    if count != end - start:
        raise MalformedXet(f"the xorb has no chunks [{start}, {end})")

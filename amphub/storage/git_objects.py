"""Git objects read by their headers: sizes without inflating, blobs a chunk at a time."""

from __future__ import annotations

import mmap
import tempfile
import zlib
from binascii import hexlify
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from dulwich.object_store import PackBasedObjectStore
from dulwich.objects import ObjectID, RawObjectID, hex_to_sha
from dulwich.pack import OFS_DELTA, REF_DELTA, Pack
from dulwich.repo import Repo

from amphub.storage.rebuilt_blobs import open_rebuilt, rebuilt_dir

CHUNK = 256 * 1024
# A delta with a larger result is rebuilt into a kept file, not in each reader's memory.
REBUILT_ABOVE = 1024 * 1024
# The longest header of a packed object: type and size, then a REF_DELTA's base id.
PACKED_HEADER = 32
# A delta starts with two sizes (base, result) of at most 10 bytes each.
DELTA_HEADER = 20
# A loose object starts with `<kind> <size>\0`.
LOOSE_HEADER = 32
LOOSE_KINDS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


def object_header(data: bytes | mmap.mmap, offset: int) -> tuple[int, int, int, int | bytes | None]:
    """Type, size, data start and delta base of a packed object.

    The base is an offset for an OFS_DELTA, an id for a REF_DELTA, None for a whole object.
    """
    byte = data[offset]
    type_num, size, shift, pos = (byte >> 4) & 7, byte & 15, 4, offset + 1
    while byte & 0x80:
        byte = data[pos]
        size |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
    if type_num == OFS_DELTA:
        byte = data[pos]
        distance = byte & 0x7F
        pos += 1
        while byte & 0x80:
            byte = data[pos]
            distance = ((distance + 1) << 7) | (byte & 0x7F)
            pos += 1
        return type_num, size, pos, offset - distance
    if type_num == REF_DELTA:
        return type_num, size, pos + 20, data[pos : pos + 20]
    return type_num, size, pos, None


def delta_sizes(delta_start: bytes) -> tuple[int, int]:
    """(base size, result size) from the first bytes of a delta."""
    sizes = []
    pos = 0
    for _ in range(2):
        size = shift = 0
        while True:
            byte = delta_start[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        sizes.append(size)
    return sizes[0], sizes[1]


def _read_at(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(size)


def _packed_header(pack: Pack, offset: int) -> tuple[int, int, int]:
    """Type, size and data start of a packed object, read with a few bytes of its pack."""
    # Read, not mapped: every mapping of a pack would count its pages in the server's RSS.
    type_num, size, start, _ = object_header(_read_at(pack._data_path, offset, PACKED_HEADER), 0)
    return type_num, size, offset + start


def _find_packed(store: PackBasedObjectStore, sha: bytes) -> tuple[Pack, int] | None:
    raw = RawObjectID(hex_to_sha(ObjectID(sha)))
    for pack in store.packs:
        try:
            return pack, pack.index.object_offset(raw)
        except KeyError:
            continue
    return None


def _loose_path(store: PackBasedObjectStore, sha: bytes) -> Path:
    name = sha.decode()
    return Path(getattr(store, "path", "")) / name[:2] / name[2:]


def _loose_header(path: Path) -> tuple[int, int]:
    """(type, size) of a loose object."""
    with open(path, "rb") as file:
        start = zlib.decompressobj().decompress(file.read(4096), LOOSE_HEADER)
    kind, size = start.partition(b"\0")[0].split(b" ")
    return LOOSE_KINDS[kind], int(size)


def object_kind(store: PackBasedObjectStore, sha: bytes) -> int | None:
    """The type number of an object (hex id) read from headers, a delta's from its base's."""
    found = _find_packed(store, sha)
    if found is None:
        loose = _loose_path(store, sha)
        return _loose_header(loose)[0] if loose.is_file() else None
    pack, offset = found
    while True:
        header = _read_at(pack._data_path, offset, PACKED_HEADER)
        type_num, _, _, base = object_header(header, 0)
        if isinstance(base, int):  # OFS_DELTA: the distance back, from offset 0 of `header`
            offset += base
        elif isinstance(base, bytes):  # REF_DELTA
            return object_kind(store, hexlify(base))
        else:
            return type_num


def object_size(repo: Repo, sha: bytes) -> int:
    """The size of an object (hex id), read from headers without inflating the object."""
    found = _find_packed(repo.object_store, sha)
    if found is None:
        loose = _loose_path(repo.object_store, sha)
        if loose.is_file():
            return _loose_header(loose)[1]
        return len(repo[sha].as_raw_string())  # in an alternate store: let dulwich read it
    pack, offset = found
    type_num, size, start = _packed_header(pack, offset)
    if type_num in (OFS_DELTA, REF_DELTA):
        compressed = _read_at(pack._data_path, start, 4096)
        return delta_sizes(zlib.decompressobj().decompress(compressed, DELTA_HEADER))[1]
    return size


class BlobReader:
    """A blob's bytes a chunk at a time: never more than a chunk of a whole object in memory.

    A small deltified object is rebuilt by dulwich in memory, a large one once into a kept
    file through scratch files (`write_rebuilt`, `rebuilt_blobs`).
    """

    def __init__(self, repo: Repo, sha: bytes) -> None:
        self.size = object_size(repo, sha)
        self._chunks = self._open(repo, sha)
        self.head = b""  # the first bytes, read by `peek`

    def _open(self, repo: Repo, sha: bytes) -> Iterator[bytes]:
        found = _find_packed(repo.object_store, sha)
        if found is not None:
            pack, offset = found
            type_num, _, start = _packed_header(pack, offset)
            if type_num not in (OFS_DELTA, REF_DELTA):
                return _inflated(pack._data_path, start, skip_header=False)
        loose = _loose_path(repo.object_store, sha)
        if found is None and loose.is_file():
            return _inflated(str(loose), 0, skip_header=True)
        if found is not None and self.size > REBUILT_ABOVE:
            store, (pack, offset) = repo.object_store, found
            scratch = rebuilt_dir(Path(repo.path))

            def rebuild(out: BinaryIO) -> None:
                write_rebuilt(store, pack, offset, out, scratch)

            return _plain(open_rebuilt(Path(repo.path), sha, rebuild))
        return iter(repo[sha].as_raw_chunks())

    def peek(self, size: int) -> bytes:
        """The first `size` bytes (or all, if fewer), which `read` still gives."""
        while len(self.head) < min(size, self.size):
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self.head += chunk
        return self.head[:size]

    def read(self) -> bytes:
        """The next chunk; b"" at the end."""
        if self.head:
            chunk, self.head = self.head, b""
            return chunk
        return next(self._chunks, b"")

    def skip(self, count: int) -> bytes:
        """Drop the first `count` bytes; the rest of the chunk they end in."""
        while True:
            chunk = self.read()
            if len(chunk) > count or not chunk:
                return chunk[count:]
            count -= len(chunk)

    def close(self) -> None:
        """Release the open file."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _chain(
    store: PackBasedObjectStore, pack: Pack, offset: int
) -> tuple[tuple[str, int, bool], list[tuple[str, int]]]:
    """The whole object under a delta chain, and the chain's deltas from it up.

    The object is (file, data start, loose or not); each delta is (file, data start).
    """
    deltas: list[tuple[str, int]] = []
    while True:
        header = _read_at(pack._data_path, offset, PACKED_HEADER)
        _, _, start, base = object_header(header, 0)
        if base is None:
            return (pack._data_path, offset + start, False), deltas[::-1]
        deltas.append((pack._data_path, offset + start))
        if isinstance(base, int):  # the distance back, from offset 0 of what was read
            offset += base
            continue
        found = _find_packed(store, hexlify(base))
        if found is None:
            return (str(_loose_path(store, hexlify(base))), 0, True), deltas[::-1]
        pack, offset = found


def write_rebuilt(
    store: PackBasedObjectStore, pack: Pack, offset: int, out: BinaryIO, scratch: Path
) -> None:
    """Write the object that a delta chain builds, through files: one delta in memory."""
    (path, start, loose), deltas = _chain(store, pack, offset)
    with ExitStack() as files:
        base: BinaryIO = files.enter_context(tempfile.TemporaryFile(dir=scratch))
        for chunk in _inflated(path, start, skip_header=loose):
            base.write(chunk)
        for i, (delta_path, delta_start) in enumerate(deltas):
            last = i == len(deltas) - 1
            result = out if last else files.enter_context(tempfile.TemporaryFile(dir=scratch))
            _apply_delta(base, b"".join(_inflated(delta_path, delta_start, False)), result)
            base.close()  # now, not at the end: a long chain would hold a file a step
            base = result


def _apply_delta(base: BinaryIO, delta: bytes, out: BinaryIO) -> None:
    """Write what `delta` makes of the file `base` (git's copy and insert instructions)."""
    pos = 0
    for _ in range(2):  # the base's and the result's sizes
        while delta[pos] & 0x80:
            pos += 1
        pos += 1
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy: which offset and size bytes follow is in the low 7 bits
            offset = size = 0
            for i in range(4):
                if op & (1 << i):
                    offset |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if op & (0x10 << i):
                    size |= delta[pos] << (8 * i)
                    pos += 1
            base.seek(offset)
            left = size or 0x10000
            while left:
                piece = base.read(min(left, CHUNK))
                if not piece:
                    raise ValueError("a delta copies past the end of its base")
                out.write(piece)
                left -= len(piece)
        elif op:  # insert the next `op` bytes
            out.write(delta[pos : pos + op])
            pos += op
        else:
            raise ValueError("a delta with an instruction 0")


def _plain(file: BinaryIO) -> Iterator[bytes]:
    """A plain file a chunk at a time."""
    with file:
        while chunk := file.read(CHUNK):
            yield chunk


def _inflated(path: str, start: int, skip_header: bool) -> Iterator[bytes]:
    """The zlib stream at `start` of a file, inflated a chunk at a time."""
    with open(path, "rb") as file:
        file.seek(start)
        inflater = zlib.decompressobj()
        while not inflater.eof:
            pending = inflater.unconsumed_tail or file.read(CHUNK)
            if not pending:
                raise ValueError("object ends early")
            chunk = inflater.decompress(pending, CHUNK)
            if skip_header:
                header_end = chunk.find(b"\0")
                if header_end < 0:
                    raise ValueError("loose object without a header")
                chunk, skip_header = chunk[header_end + 1 :], False
            if chunk:
                yield chunk

"""A pushed pack checked against the size and delta-depth limits before anything inflates it.

dulwich's `add_thin_pack` inflates every object whole, and rebuilds every delta, to name
and index it: a 16 KiB pack can make it build a 1 GiB blob. `add_checked_pack` is the
same steps with a copier that reads each object's size from its header (and a delta's
result size from the delta's header) before dulwich reads the object.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
import zlib
from binascii import hexlify
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from io import BytesIO
from typing import BinaryIO

from dulwich.object_store import PACK_MODE, DiskObjectStore, _bound_read_callables
from dulwich.objects import RawObjectID
from dulwich.pack import (
    OFS_DELTA,
    REF_DELTA,
    Pack,
    PackData,
    PackIndexer,
    PackStreamCopier,
    UnpackedObject,
    apply_delta,
)

from amphub.git.reach import BLOB, COMMIT, TREE, TREE_ENTRY, TREE_MODE, commit_links
from amphub.storage.git_objects import delta_sizes, object_header, object_kind

# An object's type and size fit in 10 bytes up to sizes of 2**60.
HEADER_PEEK = 10
PACK_HEADER = 12
KIND_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob"}
INFLATE_CHUNK = 1024 * 1024
# An oversized whole object is inflated (a chunk at a time) to learn its id and so its
# path; past this size that would cost seconds of CPU, and the path is guessed instead.
MAX_HASHED = 4 * 1024**3


@dataclass
class PushedObjects:
    """What the copier learned of the pack: commit and tree texts, ids of whole blobs."""

    texts: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)  # id -> kind, text
    by_offset: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    blobs: set[bytes] = field(default_factory=set)


class ObjectTooLarge(Exception):
    """An object of the pack is larger than the limit; `sha` is its id when it is known."""

    def __init__(self, size: int, sha: bytes | None, pushed: PushedObjects) -> None:
        super().__init__(f"an object of {size} bytes")
        self.size = size
        self.sha = sha
        self.pushed = pushed


class ChainTooDeep(Exception):
    """A delta chain of the pack is deeper than the limit."""


class CheckedPackCopier(PackStreamCopier):
    """Copies a pack stream, refusing objects over `max_size` before they are inflated."""

    def __init__(
        self,
        read_all: Callable[[int], bytes],
        read_some: Callable[[int], bytes] | None,
        outfile: BinaryIO,
        indexer: PackIndexer,
        max_size: int,
        store: DiskObjectStore,
    ) -> None:
        super().__init__(hashlib.sha1, read_all, read_some, outfile, delta_iter=indexer)  # type: ignore[arg-type]
        self.max_size = max_size
        self.pushed = PushedObjects()
        self._store = store

    def _peek(self, size: int) -> bytes:
        """The next `size` bytes of the stream, left to be read again."""
        data = self.read(size)
        self._rbuf = BytesIO(data + self._rbuf.read())
        return data

    def read_objects(self, compute_crc32: bool = False) -> Iterator[UnpackedObject]:
        """The pack's objects, each checked by its header before dulwich inflates it."""
        self._check_header(self._peek(PACK_HEADER + HEADER_PEEK)[PACK_HEADER:])
        for i, unpacked in enumerate(super().read_objects(compute_crc32)):
            self._check_delta(unpacked)
            self._remember(unpacked)
            yield unpacked
            if i + 1 < len(self):
                self._check_header(self._peek(HEADER_PEEK))

    def _check_header(self, header: bytes) -> None:
        type_num, size, _, _ = object_header(header, 0)
        if size > self.max_size:
            whole = type_num not in (OFS_DELTA, REF_DELTA) and size <= MAX_HASHED
            sha = self._hash_next(type_num, size) if whole else None
            raise ObjectTooLarge(size, sha, self.pushed)

    def _hash_next(self, type_num: int, size: int) -> bytes | None:
        """The id of the whole object that comes next, inflated a chunk at a time."""
        while self.read(1)[0] & 0x80:  # the header
            pass
        digest = hashlib.sha1(KIND_NAMES.get(type_num, b"?") + b" %d\0" % size)
        inflater = zlib.decompressobj()
        while not inflater.eof:
            data = inflater.unconsumed_tail or self.recv(INFLATE_CHUNK)
            if not data:
                return None
            digest.update(inflater.decompress(data, INFLATE_CHUNK))
        return digest.digest()

    def _check_delta(self, unpacked: UnpackedObject) -> None:
        if unpacked.delta_base is None:
            return
        result = delta_sizes(b"".join(unpacked.decomp_chunks)[:20])[1]
        if result > self.max_size:
            raise ObjectTooLarge(result, None, self.pushed)

    def _remember(self, unpacked: UnpackedObject) -> None:
        """Keep commit and tree texts (to name an oversized file), and whole blobs' ids."""
        kind, text = unpacked.obj_type_num, None
        base = unpacked.delta_base
        if base is None and kind == BLOB:
            self.pushed.blobs.add(unpacked.sha())
            return
        if base is None:
            text = b"".join(unpacked.obj_chunks or [])
        else:
            known = self._base(base, unpacked.offset or 0)
            if known is not None:
                kind = known[0]
                text = b"".join(apply_delta(known[1], b"".join(unpacked.decomp_chunks)))
        if text is None or kind not in KIND_NAMES:
            return
        sha = hashlib.sha1(KIND_NAMES[kind] + b" %d\0" % len(text) + text).digest()
        if kind == BLOB:
            self.pushed.blobs.add(sha)
            return
        self.pushed.texts[sha] = (kind, text)
        if unpacked.offset is not None:
            self.pushed.by_offset[unpacked.offset] = (kind, text)

    def _base(self, base: int | bytes, offset: int) -> tuple[int, bytes] | None:
        if isinstance(base, int):  # an OFS_DELTA's distance back from its own offset
            return self.pushed.by_offset.get(offset - base)
        if base in self.pushed.texts:
            return self.pushed.texts[base]
        if object_kind(self._store, hexlify(base)) not in (COMMIT, TREE):
            return None  # absent, or a blob: not read whole to learn that
        return self._store.get_raw(RawObjectID(base))


def add_checked_pack(
    store: DiskObjectStore,
    read_all: Callable[[int], bytes],
    read_some: Callable[[int], bytes] | None,
    max_input_size: int | None,
    max_object_size: int,
    max_depth: int,
) -> Pack:
    """`DiskObjectStore.add_thin_pack` with the copier that checks sizes, then the depth.

    A pack that fails a check is removed; the caller removes the partial file of a pack
    refused while it was copied.
    """
    if max_input_size:
        read_all, read_some = _bound_read_callables(read_all, read_some, max_input_size)
    fd, path = tempfile.mkstemp(dir=store.path, prefix="tmp_pack_")
    stored_before = {pack.name() for pack in store.packs}
    with os.fdopen(fd, "w+b") as file:
        os.chmod(path, PACK_MODE)
        indexer = PackIndexer(file, hashlib.sha1, resolve_ext_ref=store.get_raw)
        copier = CheckedPackCopier(read_all, read_some, file, indexer, max_object_size, store)
        copier.verify()
        file.flush()
        file.seek(0)
        with PackData(path, file=file, object_format=store.object_format) as data:
            indexer.set_pack_data(data)
            entries, ext_refs = store._index_pack(indexer, len(copier))
        pack = store._complete_pack(file, path, entries, ext_refs)
    if pack.name() not in stored_before and deepest_chain(pack) > max_depth:
        store._remove_pack(pack)
        raise ChainTooDeep(f"a delta chain deeper than {max_depth}")
    return pack


def deepest_chain(pack: Pack) -> int:
    """The length of the longest delta chain of a stored pack, read from headers."""
    offsets: dict[bytes, int] = {sha: offset for sha, offset, _ in pack.index.iterentries()}
    depths: dict[int, int] = {}
    with open(pack._data_path, "rb") as file:  # dulwich keeps the data file's path here
        data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    with data:
        for start in offsets.values():
            chain = []
            offset: int | None = start
            while offset is not None and offset not in depths:
                chain.append(offset)
                _, _, _, base = object_header(data, offset)
                offset = offsets.get(base) if isinstance(base, bytes) else base
            depth = 0 if offset is None else depths[offset]
            for offset in reversed(chain):
                _, _, _, base = object_header(data, offset)
                depth = depth + 1 if base is not None else 0
                depths[offset] = depth
    return max(depths.values(), default=0)


def paths_of(
    pushed: PushedObjects,
    load: Callable[[bytes], tuple[int, bytes]],
    commits: list[bytes],
    wanted: Callable[[bytes], bool],
) -> list[str]:
    """The paths, in the pushed commits, of the blobs that `wanted` picks."""

    def read(sha: bytes) -> tuple[int, bytes]:
        return pushed.texts.get(sha) or load(sha)

    found: dict[str, None] = {}
    seen: set[bytes] = set()
    pending = []
    for sha in commits:
        with suppress(KeyError):  # a tag: its commit is pushed under a branch too, if at all
            kind, text = read(sha)
            if kind == COMMIT:
                pending.append((commit_links(text)[0], ""))
    while pending:
        tree, prefix = pending.pop()
        if tree in seen:
            continue
        seen.add(tree)
        try:
            entries = TREE_ENTRY.findall(read(tree)[1])
        except KeyError:
            continue
        for mode, name, sha in entries:
            path = prefix + name.decode(errors="replace")
            if mode == TREE_MODE:
                pending.append((sha, path + "/"))
            elif wanted(sha):
                found[path] = None
    return sorted(found)

"""A pushed pack checked against the size and delta-depth limits before anything inflates it.

dulwich's `add_thin_pack` reads a pack three times in Python (copy, index, parse) and
inflates every object whole, and rebuilds every delta, to name it: a 16 KiB pack can make
it build a 1 GiB blob. `add_checked_pack` reads it once: each object's size comes from its
header (a delta's result size from the delta's header) before it is inflated.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from io import BytesIO

from dulwich.errors import ChecksumMismatch, ObjectFormatException
from dulwich.file import GitFile
from dulwich.object_store import PACK_MODE, DiskObjectStore, PackInputTooLarge
from dulwich.objects import ObjectID, RawObjectID, ShaFile, parse_tree
from dulwich.pack import Pack, apply_delta, extend_pack, iter_sha1, write_pack_index

from amphub.git.reach import BLOB, COMMIT, TAG, TREE, TREE_ENTRY, TREE_MODE, commit_links
from amphub.storage.git_objects import delta_sizes, object_header

PACK_HEADER = 12
KIND_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", TAG: b"tag"}
INFLATE_CHUNK = 1024 * 1024
# An oversized whole object is inflated (a chunk at a time) to learn its id and so its
# path; past this size that would cost seconds of CPU, and the path is guessed instead.
MAX_HASHED = 4 * 1024**3
# Texts kept as delta bases while a pack is read (git's core.deltaBaseCacheLimit is 96 MiB);
# a base no longer kept is rebuilt from the file.
BASE_CACHE = 64 * 1024 * 1024
# Entries as dulwich's parse_tree reads them, a little stricter: a tree that fails this is
# read by parse_tree, whose verdict and words count.
TREE_SHAPE = re.compile(rb"(?:[0-7]{1,7} [^\0]+\0.{20})*", re.DOTALL)


@dataclass
class PushedObjects:
    """What the copier learned of the pack: commit and tree texts, ids of whole blobs."""

    texts: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)  # id -> kind, text
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


class PackIntake:
    """One pass over a pack file: each object checked by its header, inflated, named, indexed.

    Bases of deltas come from a bounded cache of texts, or are read again from the file.
    """

    def __init__(
        self, data: mmap.mmap, store: DiskObjectStore, max_size: int, max_depth: int
    ) -> None:
        self.data = data
        self.store = store
        self.max_size = max_size
        self.max_depth = max_depth
        self.pushed = PushedObjects()
        self.entries: list[tuple[bytes, int, int]] = []  # id, offset, crc32
        self.ext_refs: set[RawObjectID] = set()
        self._kinds: dict[int, tuple[int, int]] = {}  # offset -> kind, chain depth
        self._offsets: dict[bytes, int] = {}
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cached = 0
        self._waiting: list[tuple[int, int, int | bytes, bytes]] = []  # offset, crc, base, delta
        self._later: set[int] = set()  # offsets of waiting deltas

    def read(self) -> bytes:
        """Index every object; the pack's checksum."""
        data = self.data
        if len(data) < PACK_HEADER + 20 or data[:4] != b"PACK":
            raise ValueError("the pushed data is not a pack")
        version, count = struct.unpack(">LL", data[4:PACK_HEADER])
        if version not in (2, 3):
            raise ValueError(f"pack version {version} is not supported")
        offset = PACK_HEADER
        for _ in range(count):
            offset = self._read_object(offset)
        if len(data) - offset != 20:
            raise ValueError("the pack does not end after its last object")
        self._resolve_waiting()
        # A base read from the repository that the pack holds too is not appended again.
        self.ext_refs = {sha for sha in self.ext_refs if sha not in self._offsets}
        digest = hashlib.sha1()
        for start in range(0, offset, INFLATE_CHUNK):
            digest.update(data[start : min(start + INFLATE_CHUNK, offset)])
        checksum = data[offset:]
        if digest.digest() != checksum:
            raise ChecksumMismatch(digest.hexdigest(), checksum.hex())
        return checksum

    def _read_object(self, offset: int) -> int:
        """Check, inflate and index the object at `offset`; the offset after it."""
        kind, size, start, base = object_header(self.data, offset)
        if base is None and size > self.max_size:
            sha = self._hash_at(kind, size, start) if size <= MAX_HASHED else None
            raise ObjectTooLarge(size, sha, self.pushed)
        text, end = self._inflate(start, size)
        crc = zlib.crc32(self.data[offset:end])
        if base is None:
            self._add(offset, crc, kind, text, 0)
            return end
        result = delta_sizes(text[:20])[1]
        if result > self.max_size:
            raise ObjectTooLarge(result, None, self.pushed)
        self._add_delta(offset, crc, base, text)
        return end

    def _add_delta(self, offset: int, crc: int, base: int | bytes, delta: bytes) -> None:
        """Index the delta at `offset`, or keep it until its base is read."""
        if isinstance(base, bytes) and base in self._offsets:
            base = self._offsets[base]
        if isinstance(base, int) and base in self._kinds:
            kind, depth = self._kinds[base]
            if depth >= self.max_depth:
                raise ChainTooDeep(f"a delta chain deeper than {self.max_depth}")
            self._add(offset, crc, kind, _apply(self._text(base), delta), depth + 1)
        elif isinstance(base, int) and base not in self._later:
            raise ValueError(f"the delta at {offset} is based on no object's offset")
        elif isinstance(base, bytes) and (external := self._external(base)) is not None:
            self.ext_refs.add(RawObjectID(base))
            self._add(offset, crc, external[0], _apply(external[1], delta), 1)
        else:
            self._waiting.append((offset, crc, base, delta))
            self._later.add(offset)

    def _external(self, sha: bytes) -> tuple[int, bytes] | None:
        """An object of the repository that a thin pack's delta is based on."""
        try:
            return self.store.get_raw(RawObjectID(sha))
        except KeyError:
            return None

    def _resolve_waiting(self) -> None:
        """Deltas on bases that came later in the pack."""
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            for offset, crc, base, delta in waiting:
                self._later.discard(offset)
                self._add_delta(offset, crc, base, delta)
            if len(self._waiting) == len(waiting):
                sha = self._waiting[0][2]
                name = sha.hex() if isinstance(sha, bytes) else f"at {sha}"
                raise ValueError(f"the base {name} of a delta is missing")

    def _add(self, offset: int, crc: int, kind: int, text: bytes, depth: int) -> None:
        name = KIND_NAMES.get(kind)
        if name is None:
            raise ValueError(f"an object of unknown type {kind}")
        digest = hashlib.sha1(name + b" %d\0" % len(text))
        digest.update(text)
        sha = digest.digest()
        if kind == BLOB:
            self.pushed.blobs.add(sha)
        else:
            _check_parses(kind, text, sha)
            if kind != TAG:
                self.pushed.texts[sha] = (kind, text)
        self.entries.append((sha, offset, crc))
        self._offsets[sha] = offset
        self._kinds[offset] = (kind, depth)
        self._remember(offset, text)

    def _remember(self, offset: int, text: bytes) -> None:
        if len(text) > BASE_CACHE // 4:
            return
        self._cache[offset] = text
        self._cached += len(text)
        while self._cached > BASE_CACHE:
            self._cached -= len(self._cache.popitem(last=False)[1])

    def _text(self, offset: int) -> bytes:
        """The text of the object at `offset`, rebuilt from the file unless it is cached."""
        chain: list[bytes] = []
        while True:
            text = self._cache.get(offset)
            if text is not None:
                self._cache.move_to_end(offset)
                break
            _, size, start, base = object_header(self.data, offset)
            data = self._inflate(start, size)[0]
            if base is None:
                text = data
                break
            chain.append(data)
            if isinstance(base, bytes) and base not in self._offsets:
                text = self.store.get_raw(RawObjectID(base))[1]
                break
            offset = base if isinstance(base, int) else self._offsets[base]
        for delta in reversed(chain):
            text = _apply(text, delta)
        return text

    def _inflate(self, start: int, size: int) -> tuple[bytes, int]:
        """The `size` bytes inflated from `start`, and the offset after the compressed data."""
        inflater = zlib.decompressobj()
        parts = []
        got = 0
        pos = start
        step = size + (size >> 6) + 64  # most objects in one call, little read past them
        while not inflater.eof:
            chunk = self.data[pos : pos + step]
            if not chunk:
                raise ValueError("the pack ends inside an object")
            pos += len(chunk)
            step = INFLATE_CHUNK
            part = inflater.decompress(chunk, size + 1 - got)
            got += len(part)
            parts.append(part)
            if got > size:
                raise ValueError("an object is larger than its header says")
        if got != size:
            raise ValueError("an object is smaller than its header says")
        text = parts[0] if len(parts) == 1 else b"".join(parts)
        return text, pos - len(inflater.unused_data)

    def _hash_at(self, kind: int, size: int, start: int) -> bytes | None:
        """The id of the whole object at `start`, inflated a chunk at a time."""
        digest = hashlib.sha1(KIND_NAMES.get(kind, b"?") + b" %d\0" % size)
        inflater = zlib.decompressobj()
        pos = start
        while not inflater.eof:
            data = inflater.unconsumed_tail or self.data[pos : pos + INFLATE_CHUNK]
            if not inflater.unconsumed_tail:
                pos += len(data)
            if not data:
                return None
            digest.update(inflater.decompress(data, INFLATE_CHUNK))
        return digest.digest()


def _check_parses(kind: int, text: bytes, sha: bytes) -> None:
    """Refuse a tree, commit or tag that dulwich cannot read, as it would when reading it."""
    if kind != TREE:
        ShaFile.from_raw_string(kind, text, ObjectID(sha.hex().encode()))
        return
    if TREE_SHAPE.fullmatch(text):
        return
    try:  # what Tree._deserialize checks, and says, without building the Tree
        parse_tree(text, sha_len=len(sha))
    except ValueError as exc:
        raise ObjectFormatException(exc) from exc


def _apply(base: bytes, delta: bytes) -> bytes:
    return b"".join(apply_delta(base, delta))


def add_checked_pack(
    store: DiskObjectStore,
    read_all: Callable[[int], bytes],
    read_some: Callable[[int], bytes] | None,
    max_input_size: int | None,
    max_object_size: int,
    max_depth: int,
) -> Pack:
    """Store a pushed pack, refusing objects over the size and chains over the depth limits.

    The pack is copied to a temporary file, then read once (`PackIntake`); only a pack
    that passed every check gets its index and its name, and so becomes visible. The
    caller removes the temporary file of a refused pack.
    """
    read = read_some or read_all
    fd, path = tempfile.mkstemp(dir=store.path, prefix="tmp_pack_")
    with os.fdopen(fd, "w+b") as file:
        os.chmod(path, PACK_MODE)
        while chunk := read(INFLATE_CHUNK):
            file.write(chunk)
            if max_input_size and file.tell() > max_input_size:  # git's --max-input-size
                raise PackInputTooLarge(
                    f"pack exceeds maximum input size of {max_input_size} bytes"
                )
        file.flush()
        if not file.tell():
            raise ValueError("the pushed data is not a pack")
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            intake = PackIntake(data, store, max_object_size, max_depth)
            pack_sha = intake.read()
        entries = intake.entries
        if intake.ext_refs:
            pack_sha, extra = extend_pack(
                file,
                intake.ext_refs,
                get_raw=store.get_raw,
                object_format=store.object_format,
                compression_level=store.pack_compression_level,
            )
            entries.extend(extra)
        if store.fsync_object_files:
            os.fsync(file.fileno())
    return _install(store, path, sorted(entries), pack_sha)


def _install(
    store: DiskObjectStore, path: str, entries: list[tuple[bytes, int, int]], pack_sha: bytes
) -> Pack:
    """Name the pack by its objects and move it in; its index, written last, makes it seen."""
    name = iter_sha1(sha for sha, _, _ in entries)
    for pack in store.packs:
        if pack.name() == name:
            os.remove(path)
            return pack
    base = os.path.join(store.pack_dir, "pack-" + name.decode())
    os.rename(path, base + ".pack")
    index = BytesIO()  # dulwich's writer makes many small writes
    write_pack_index(index, entries, pack_sha, version=store.pack_index_version)
    with GitFile(base + ".idx", "wb", mask=PACK_MODE, fsync=store.fsync_object_files) as file:
        file.write(index.getvalue())
    return next(pack for pack in store.packs if pack.name() == name)  # `packs` looks again


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

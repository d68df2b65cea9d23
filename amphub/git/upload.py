"""upload-pack that sends what is stored, as C git does, and keeps full-clone packs.

dulwich's UploadPackHandler finds the objects to send one at a time through the object
store, looks for reusable deltas by decompressing every object of every pack, and
recompresses each whole object it writes: a 68k-object clone took seven times as long as
`git http-backend`. This handler keeps dulwich's protocol code (ref checks, ACK/NAK
negotiation, side-band) and replaces the two costly steps:

* choosing the objects (`amphub.git.reach`): a full clone reads each pack once in offset
  order, keeping the texts of commits, trees and tags, and drops what nothing wanted refers
  to by counting references (git's object graph has no cycles); a fetch walks commits by
  date from the wants and haves, and compares only the trees that changed;
* writing the pack (`amphub.git.packfile`): objects are copied from the stored packs still
  compressed, deltas included; only a delta whose base is not sent is expanded.

The pack of a full clone (no haves) is kept under `<repo>/amphub-cache/`, named by a hash
of the refs and capabilities it depends on, so the next clone of unchanged refs streams a
file. After a push, `warm_clone_cache` makes the packs of a full and a blob:none clone
(as git asks for them) and the set of reachable ids in the background; a clone that finds
one of them being made waits for it rather than making it a second time. Shallow, deepen
and filtered requests take the fetch path, their history cut (`amphub.git.shallow`) and
their trees filtered (`amphub.git.object_filter`); any object a ref reaches may be wanted.
SHA-256 repositories and repositories with alternates go to dulwich's own handler
unchanged.

Object ids are binary (20 bytes) here; hex only at dulwich's protocol boundary.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from binascii import hexlify, unhexlify
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import BinaryIO

from dulwich.errors import GitProtocolError
from dulwich.object_format import SHA1
from dulwich.objects import ObjectID
from dulwich.protocol import (
    CAPABILITY_ALLOW_REACHABLE_SHA1_IN_WANT,
    CAPABILITY_DEEPEN_NOT,
    CAPABILITY_DEEPEN_RELATIVE,
    CAPABILITY_DEEPEN_SINCE,
    CAPABILITY_INCLUDE_TAG,
    CAPABILITY_NO_DONE,
    CAPABILITY_OFS_DELTA,
    CAPABILITY_THIN_PACK,
    ReceivableProtocol,
)
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.server import UploadPackHandler, _ProtocolGraphWalker

from amphub.git.backend import REPO_ARGS, disk_repo, one_repo_backend
from amphub.git.object_filter import BLOB_NONE, NO_FILTER, ObjectFilter, parse_filter
from amphub.git.packfile import (
    COPY_CHUNK,
    PackFile,
    raw_loader,
    write_clone_pack,
    write_fetch_pack,
)
from amphub.git.reach import (
    BLOB,
    NO_CUT,
    AllObjects,
    Cut,
    add_tags,
    fetch_objects,
    peel,
    read_all_objects,
    unreachable,
    unreached_wants,
    walk_fetch,
)
from amphub.git.shallow import ancestors, cut_by_depth, cut_by_rev_list
from amphub.git.upload_request import UploadRequest, parse_request, read_request_head
from amphub.storage.git_objects import object_kind, object_size
from amphub.storage.rebuilt_blobs import prune_cache
from amphub.storage.repos import PACK_CACHE_DIR, prepare_repo

SIDEBAND_DATA = 65515  # the payload of one side-band-64k pkt-line
CACHE_KEEP = 3
BULK_FETCH_COMMITS = 500
CACHE_FORMAT = b"amphub pack cache 1\n"
NOT_TEXT = (None, BLOB)
REACHABLE = ".reachable"  # the ids every ref reaches, beside the full-clone packs
# Held while a cached file is made (striped by its name), so that its other makers wait.
BUILDING = [threading.RLock() for _ in range(64)]
# The capabilities git 2.39's `git clone` sends (v0 and v2): what its cached pack is named by.
CLONE_CAPABILITIES = [CAPABILITY_OFS_DELTA]
BLOB_NONE_CAPABILITY = b"filter=blob:none"
WARMED = "warmed"  # names the file of the refs the last warm-up made its files for


def serve_upload_pack(
    path: Path, recv: Callable[[int], bytes], write: Callable[[bytes], None]
) -> None:
    """Answer one stateless upload-pack request read with `recv`, written with `write`."""
    prepare_repo(path)
    head = read_request_head(recv)
    with Repo(str(path)) as repo:
        backend = one_repo_backend(repo)
        if not served_by_amphub(repo):
            proto = ReceivableProtocol(_Replay(head, recv).recv, write)
            UploadPackHandler(backend, REPO_ARGS, proto, stateless_rpc=True).handle()
            return
        request = parse_request(head)
        proto = ReceivableProtocol(_Replay(request.negotiation, recv).recv, write)
        handler = AmphubUploadPackHandler(backend, REPO_ARGS, proto, stateless_rpc=True)
        handler.request = request
        handler.handle()


def served_by_amphub(repo: Repo) -> bool:
    """Whether amphub's handler serves the repository (SHA-1, no alternates: all it makes)."""
    return repo.object_format is SHA1 and not repo.object_store.alternates


# --- the request --------------------------------------------------------------------


class _Replay:
    """A `recv` that returns the peeked head before the rest of the body."""

    def __init__(self, head: bytes, recv: Callable[[int], bytes]) -> None:
        self._head = memoryview(head)
        self._recv = recv

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes of the body."""
        if self._head:
            data, self._head = bytes(self._head[:size]), self._head[size:]
            return data
        return self._recv(size)


# --- the handler --------------------------------------------------------------------


class AmphubUploadPackHandler(UploadPackHandler):
    """Negotiates as dulwich does, then sends a pack built from the stored packs.

    The first section of the request was read by `parse_request`: dulwich sees only
    its want lines; shallow, deepen and filter lines are answered here.
    """

    request = UploadRequest()

    @classmethod
    def required_capabilities(cls) -> tuple[bytes, ...]:
        """Those dulwich requires but thin-pack: a client that asks for none gets whole packs."""
        return tuple(c for c in super().required_capabilities() if c != CAPABILITY_THIN_PACK)

    def capabilities(self) -> list[bytes]:
        """dulwich's, with fetches by commit id and every way to deepen."""
        if not served_by_amphub(disk_repo(self.repo)):
            return super().capabilities()
        return [
            *super().capabilities(),
            CAPABILITY_ALLOW_REACHABLE_SHA1_IN_WANT,
            CAPABILITY_DEEPEN_SINCE,
            CAPABILITY_DEEPEN_NOT,
            CAPABILITY_DEEPEN_RELATIVE,
        ]

    def handle(self) -> None:
        """Answer the wants and haves of one request, with a pack once the client is done."""
        self._processing_have_lines = True
        repo = self.repo
        store = repo.object_store
        request = self.request
        keep = parse_filter(request.filter_spec)
        walker = _ProtocolGraphWalker(self, store, repo.get_peeled, repo.refs.get_symrefs)
        refs = {ref: sha for ref, sha in repo.get_refs().items() if sha in store}
        # dulwich accepts the wants it is shown as refs: add those a ref reaches.
        wanted = {Ref(b"want/" + hexlify(sha)): ObjectID(hexlify(sha)) for sha in request.wants}
        wants = walker.determine_wants({**refs, **self.reachable(refs, wanted)})
        cut = self.cut(refs) if request.deepens and request.wants else NO_CUT
        if request.deepens and request.wants:
            self.write_shallow_lines(cut)
            self.proto.write_pkt_line(None)
        if not wants:
            return
        haves = store.find_common_revisions(walker)
        if not walker.handle_done(not self.has_capability(CAPABILITY_NO_DONE), self._done_received):
            return
        self.send_pack(refs, wants, haves, cut, keep)

    def send_pack(
        self,
        refs: Mapping[Ref, ObjectID],
        wants: Iterable[ObjectID],
        haves: Iterable[ObjectID],
        cut: Cut,
        keep: ObjectFilter,
    ) -> None:
        """Send the pack of the checked wants, for a client that has `haves`."""
        self._start_pack_send_phase()
        output = SidebandOutput(self.write_pack_data)
        # dulwich finds no repository behind a DictBackend's Repo unless given one.
        tagged = {unhexlify(k): unhexlify(v) for k, v in self.get_tagged(refs, self.repo).items()}
        binary_wants = {unhexlify(w) for w in wants}
        binary_haves = [unhexlify(h) for h in haves]
        # A clone of ref tips (whole or blob:none) is read in one pass and its pack kept;
        # the lazy fetches of a partial clone (wants no ref points at) are not.
        tips = {unhexlify(sha) for sha in refs.values()}
        plain = cut is NO_CUT and keep in (NO_FILTER, BLOB_NONE) and binary_wants <= tips
        if plain and not binary_haves:
            self._send_clone(output, refs, binary_wants, tagged, keep)
        else:
            self._send_fetch(output, binary_wants, binary_haves, tagged, cut, keep)
        output.flush()
        self.proto.write_pkt_line(None)

    def write_shallow_lines(self, cut: Cut) -> None:
        """The `shallow` and `unshallow` lines that tell the client where its history ends."""
        for sha in sorted(cut.new_shallow()):
            self.proto.write_pkt_line(b"shallow " + hexlify(sha) + b"\n")
        for sha in sorted(cut.unshallow):
            self.proto.write_pkt_line(b"unshallow " + hexlify(sha) + b"\n")

    def reachable(
        self, refs: Mapping[Ref, ObjectID], wanted: Mapping[Ref, ObjectID]
    ) -> dict[Ref, ObjectID]:
        """The wants not at a ref that a ref reaches (allow-reachable-sha1-in-want)."""
        tips = {unhexlify(sha) for sha in refs.values()}
        asked = {unhexlify(sha) for sha in wanted.values()} - tips
        if not asked:
            return {}
        repo = disk_repo(self.repo)
        store = repo.object_store
        load = raw_loader(store)

        def everything() -> set[bytes]:
            with ExitStack() as stack:
                packs = [stack.enter_context(PackFile(p, indexed=True)) for p in store.packs]
                objects = read_all_objects(packs, Path(store.path), load)
                return objects.ids - unreachable(objects, tips)

        # The lazy fetches of a partial clone come one after another: the set is kept.
        cache = PackCache(Path(repo.path) / PACK_CACHE_DIR)
        key = cache_key(refs, [], [b"reachable"])

        def kind_of(sha: bytes) -> int | None:
            return object_kind(store, hexlify(sha))

        refused = unreached_wants(
            load, kind_of, list(tips), asked, partial(cache.reachable, key, everything)
        )
        return {ref: sha for ref, sha in wanted.items() if unhexlify(sha) not in refused}

    def cut(self, refs: Mapping[Ref, ObjectID]) -> Cut:
        """Where the history of a shallow fetch ends; the wants were checked."""
        request = self.request
        load = raw_loader(self.repo.object_store)
        wants, _ = peel(load, request.wants, set())
        if request.depth is not None:
            starts = sorted(request.client_shallow) if request.relative else wants
            depth = request.depth + 1 if request.relative else request.depth
            return cut_by_depth(load, starts, depth, request.client_shallow)
        not_tips = []
        for name in request.not_refs:
            sha = (
                refs.get(Ref(name))
                or refs.get(Ref(b"refs/heads/" + name))
                or refs.get(Ref(b"refs/tags/" + name))
            )
            if sha is None:
                raise GitProtocolError(f"deepen-not: no ref {name.decode(errors='replace')}")
            not_tips.append(unhexlify(sha))
        excluded = ancestors(load, peel(load, not_tips, set())[0])
        return cut_by_rev_list(load, wants, self.request.since, excluded, request.client_shallow)

    def _send_fetch(
        self,
        output: SidebandOutput,
        wants: set[bytes],
        haves: list[bytes],
        tagged: Mapping[bytes, bytes],
        cut: Cut,
        keep: ObjectFilter,
    ) -> None:
        repo = disk_repo(self.repo)
        store = repo.object_store
        walk = walk_fetch(raw_loader(store), wants, haves, cut)
        # Past a few hundred commits one pass over the packs beats lookups one by one.
        bulk = len(walk.missing) > BULK_FETCH_COMMITS
        with ExitStack() as stack:
            packs = [stack.enter_context(PackFile(pack, indexed=bulk)) for pack in store.packs]
            load = raw_loader(store)
            if bulk:
                load = read_all_objects(packs, Path(store.path), raw_loader(store)).load

            def size(sha: bytes) -> int:
                return object_size(repo, hexlify(sha))

            send, has = fetch_objects(load, walk, tagged, keep, size)
            if keep is not NO_FILTER or not self.has_capability(CAPABILITY_THIN_PACK):
                # A partial clone may lack what it has the trees of; a client that asked
                # for no thin pack gets deltas only on what the pack holds.
                has = set()
            self.progress(f"counting objects: {len(send)}, done.\n".encode())
            write_fetch_pack(output.write, packs, load, send, has)

    def _send_clone(
        self,
        output: SidebandOutput,
        refs: Mapping[Ref, ObjectID],
        wants: set[bytes],
        tagged: Mapping[bytes, bytes],
        keep: ObjectFilter,
    ) -> None:
        cache = PackCache(Path(disk_repo(self.repo).path) / PACK_CACHE_DIR)
        caps = [c for c in (CAPABILITY_INCLUDE_TAG, CAPABILITY_OFS_DELTA) if self.has_capability(c)]
        if keep is BLOB_NONE:
            caps.append(BLOB_NONE_CAPABILITY)
        key = cache_key(refs, wants, caps)
        with cache.building(key):  # made by a warm-up or another clone meanwhile: read it
            cached = cache.get(key)
            if cached is None:
                with cache.put(key) as store:

                    def both(data: bytes) -> None:
                        output.write(data)
                        store(data)

                    self._write_clone(both, wants, tagged, keep)
                return
        with cached:
            count = int.from_bytes(cached.read(12)[8:], "big")
            self.progress(f"counting objects: {count}, done (cached pack).\n".encode())
            cached.seek(0)
            while chunk := cached.read(COPY_CHUNK):
                output.write(chunk)

    def _write_clone(
        self,
        out: Callable[[bytes], None],
        wants: set[bytes],
        tagged: Mapping[bytes, bytes],
        keep: ObjectFilter,
    ) -> None:
        store = disk_repo(self.repo).object_store
        with ExitStack() as stack:
            packs = [stack.enter_context(PackFile(pack, indexed=True)) for pack in store.packs]
            objects = read_all_objects(packs, Path(store.path), raw_loader(store))
            send = clone_objects(objects, objects.ids - unreachable(objects, wants), wants, keep)
            add_tags(objects.load, send, tagged)
            self.progress(f"counting objects: {len(send)}, done.\n".encode())
            write_clone_pack(out, packs, objects.load, send)


def clone_objects(
    objects: AllObjects, reached: set[bytes], wants: set[bytes], keep: ObjectFilter
) -> set[bytes]:
    """What a clone of `wants` sends: the `reached` objects the filter keeps (wants always)."""
    if keep is not BLOB_NONE:
        return set(reached)
    # Objects whose text is not kept are blobs.
    return {sha for sha in reached if sha in wants or objects.kind_of(sha) not in NOT_TEXT}


def warm_clone_cache(path: Path) -> None:
    """Make what the first clones of the refs read, unless it is there already.

    That is the packs of a full and a blob:none clone of every branch and tag, and the ids
    the refs reach (for the lazy fetches of partial clones). After a push that left
    nothing behind, they are those of the refs before it plus what the push's commits
    bring (`_extend_warm`); else one read of the packs makes the three (`_warm_all`).
    The refs are read before the packs are listed, so the packs hold every object they name.
    """
    if not path.is_dir():
        return  # the model was deleted meanwhile
    prepare_repo(path)
    with Repo(str(path)) as repo:
        if not served_by_amphub(repo):
            return
        store = repo.object_store
        refs = {ref: sha for ref, sha in repo.get_refs().items() if sha in store}
        cache = PackCache(Path(repo.path) / PACK_CACHE_DIR)
        full, blobless, reachable = warm_keys(refs)
        if cache.has(full) and cache.has(blobless) and cache.has(reachable, REACHABLE):
            return
        with cache.building(full, blobless, reachable + REACHABLE) as release:
            previous = cache.warmed_refs()
            if previous is None or not _extend_warm(cache, repo, previous, refs, release):
                _warm_all(cache, repo, refs, release)
            cache.note_warmed(refs)


def warm_keys(refs: Mapping[Ref, ObjectID]) -> tuple[str, str, str]:
    """The cache names of a full clone's pack, a blob:none clone's and the reachable ids."""
    tips = {unhexlify(sha) for sha in refs.values()}
    return (
        cache_key(refs, tips, CLONE_CAPABILITIES),
        cache_key(refs, tips, [*CLONE_CAPABILITIES, BLOB_NONE_CAPABILITY]),
        cache_key(refs, [], [b"reachable"]),
    )


def _warm_all(
    cache: PackCache, repo: Repo, refs: Mapping[Ref, ObjectID], release: Callable[[str], None]
) -> None:
    """Make the files of `warm_clone_cache` from one read of every pack."""
    store = repo.object_store
    tips = {unhexlify(sha) for sha in refs.values()}
    full, blobless, reachable = warm_keys(refs)
    with ExitStack() as stack:
        packs = [stack.enter_context(PackFile(p, indexed=True)) for p in store.packs]
        objects = read_all_objects(packs, Path(store.path), raw_loader(store))
        reached = objects.ids - unreachable(objects, tips)
        for keep, key in ((NO_FILTER, full), (BLOB_NONE, blobless)):
            if not cache.has(key):
                send = clone_objects(objects, reached, tips, keep)
                with cache.put(key) as write:
                    write_clone_pack(write, packs, objects.load, send)
            release(key)  # a clone waiting for this pack need not wait for the rest
        cache.reachable(reachable, lambda: reached)


def _extend_warm(
    cache: PackCache,
    repo: Repo,
    previous: Mapping[Ref, ObjectID],
    refs: Mapping[Ref, ObjectID],
    release: Callable[[str], None],
) -> bool:
    """Make the files of `warm_clone_cache` from those of the `previous` refs; False if not.

    Only when the refs still reach every previous tip (nothing was deleted or rewound: the
    objects of the previous packs are all reachable) and the push brought a few hundred
    commits at most. The new packs are the previous ones followed by the new objects.
    """
    store = repo.object_store
    load = raw_loader(store)
    tips = {unhexlify(sha) for sha in refs.values()}
    before = {unhexlify(sha) for sha in previous.values()}
    old_full, old_blobless, old_reachable = warm_keys(previous)
    old_reached = cache.read_reachable(old_reachable)
    try:
        old_packs = {NO_FILTER: cache.get(old_full), BLOB_NONE: cache.get(old_blobless)}
    except OSError:
        return False
    with ExitStack() as stack:
        for file in old_packs.values():
            if file is not None:
                stack.enter_context(file)
        if old_reached is None or None in old_packs.values():
            return False
        walk = walk_fetch(load, tips, sorted(before))
        if len(walk.missing) > BULK_FETCH_COMMITS:
            return False  # one read of the packs is faster

        def kind_of(sha: bytes) -> int | None:
            return object_kind(store, hexlify(sha))

        if unreached_wants(load, kind_of, sorted(tips), before - tips, set):
            return False
        send, _ = fetch_objects(load, walk, {})
        new = send - old_reached
        packs = [stack.enter_context(PackFile(pack)) for pack in store.packs]
        full, blobless, reachable = warm_keys(refs)
        for keep, key in ((NO_FILTER, full), (BLOB_NONE, blobless)):
            old = old_packs[keep]
            if not cache.has(key) and old is not None:
                add = new if keep is NO_FILTER else {s for s in new if kind_of(s) != BLOB}
                count = int.from_bytes(old.read(12)[8:], "big")
                with cache.put(key) as write:
                    write_fetch_pack(write, packs, load, add, old_reached, after=(old, count))
            release(key)
        cache.reachable(reachable, lambda: old_reached | new)
    return True


class SidebandOutput:
    """Pack data cut into full side-band-64k packets."""

    def __init__(self, write_data: Callable[[bytes], None]) -> None:
        self._write_data = write_data
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        """Queue `data`, sending every full packet."""
        self._buffer += data
        if len(self._buffer) >= SIDEBAND_DATA:
            view = memoryview(self._buffer)
            sent = 0
            while len(view) - sent >= SIDEBAND_DATA:
                self._write_data(bytes(view[sent : sent + SIDEBAND_DATA]))
                sent += SIDEBAND_DATA
            view.release()
            del self._buffer[:sent]

    def flush(self) -> None:
        """Send what is queued."""
        if self._buffer:
            self._write_data(bytes(self._buffer))
            self._buffer.clear()


# --- the full-clone cache -----------------------------------------------------------


def cache_key(refs: Mapping[Ref, ObjectID], wants: Iterable[bytes], caps: list[bytes]) -> str:
    """Names the pack of a full clone by everything that decides its contents."""
    digest = hashlib.sha256(CACHE_FORMAT)
    for want in sorted(set(wants)):
        digest.update(b"want " + hexlify(want) + b"\n")
    for ref, sha in sorted(refs.items()):
        digest.update(b"ref " + ref + b" " + sha + b"\n")
    for cap in sorted(caps):
        digest.update(b"capability " + cap + b"\n")
    return digest.hexdigest()


class PackCache:
    """Full-clone packs of one repository: complete files only, the newest few kept."""

    def __init__(self, root: Path, keep: int = CACHE_KEEP) -> None:
        self.root = root
        self.keep = keep

    def get(self, key: str) -> BinaryIO | None:
        """The cached pack for `key`, opened, or None."""
        try:
            file = open(self.root / f"{key}.pack", "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            return None
        if file.read(4) != b"PACK":
            file.close()
            return None
        file.seek(0)
        os.utime(file.fileno())  # recently served packs are kept longest
        return file

    def warmed_refs(self) -> dict[Ref, ObjectID] | None:
        """The refs that the last warm-up made its files for, or None."""
        try:
            lines = (self.root / f"{WARMED}.refs").read_bytes().splitlines()
        except FileNotFoundError:
            return None
        refs = {}
        for line in lines:
            sha, _, ref = line.partition(b" ")
            refs[Ref(ref)] = ObjectID(sha)
        return refs

    def note_warmed(self, refs: Mapping[Ref, ObjectID]) -> None:
        """Remember the refs that a warm-up made its files for."""
        with self.put(WARMED, ".refs") as write:
            write(b"".join(sha + b" " + ref + b"\n" for ref, sha in sorted(refs.items())))

    def has(self, key: str, suffix: str = ".pack") -> bool:
        """Whether the file for `key` is there."""
        return (self.root / f"{key}{suffix}").exists()

    @contextmanager
    def building(self, *keys: str) -> Iterator[Callable[[str], None]]:
        """Held while the files for `keys` are made: another maker waits, then finds them.

        The locks are taken in one order, so two holders of several cannot wait for each
        other; the function given releases the lock of one key once its file is made.
        """
        stripes = {key: hash((self.root, key)) % len(BUILDING) for key in keys}
        held = sorted(set(stripes.values()))
        for stripe in held:
            BUILDING[stripe].acquire()

        def release(key: str) -> None:
            stripe = stripes.pop(key)
            if stripe in held and stripe not in stripes.values():
                held.remove(stripe)
                BUILDING[stripe].release()

        try:
            yield release
        finally:
            for stripe in held:
                BUILDING[stripe].release()

    def read_reachable(self, key: str) -> set[bytes] | None:
        """The ids kept under `key` by `reachable`, or None."""
        path = self.root / f"{key}{REACHABLE}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if not data or len(data) % 20:
            return None
        os.utime(path)
        return {data[at : at + 20] for at in range(0, len(data), 20)}

    def reachable(self, key: str, compute: Callable[[], set[bytes]]) -> set[bytes]:
        """The ids of the objects the refs reach, kept under `key` (which names the refs)."""
        with self.building(key + REACHABLE):
            ids = self.read_reachable(key)
            if ids is not None:
                return ids
            ids = compute()
            with self.put(key, REACHABLE) as write:
                write(b"".join(sorted(ids)))
            return ids

    @contextmanager
    def put(self, key: str, suffix: str = ".pack") -> Iterator[Callable[[bytes], None]]:
        """A function that writes the file for `key`; it becomes visible only once complete.

        The cache only saves work: where it cannot be written (a full disk), the writes go
        nowhere and the clone goes on.
        """
        try:
            self.root.mkdir(exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.root, prefix="tmp-", suffix=".partial")
        except OSError:
            yield lambda data: None
            return
        file = os.fdopen(fd, "wb")
        failed = False

        def write(data: bytes) -> None:
            nonlocal failed
            if not failed:
                try:
                    file.write(data)
                except OSError:
                    failed = True

        try:
            yield write
            if not failed:
                with suppress(OSError):  # not kept: the next clone writes it again
                    file.flush()
                    os.fsync(file.fileno())  # so a crash cannot leave a short file at the name
                    os.replace(temp, self.root / f"{key}{suffix}")
        finally:
            with suppress(OSError):
                file.close()
            if os.path.exists(temp):
                os.unlink(temp)
        self.prune()

    def prune(self) -> None:
        """Keep the newest packs and sets of ids; drop temp files that a crash left behind."""
        prune_cache(self.root.glob("*.pack"), self.keep, self.root.glob("tmp-*.partial"))
        prune_cache(self.root.glob(f"*{REACHABLE}"), self.keep, [])

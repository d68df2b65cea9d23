"""receive-pack with amphub's rules: checked ref names and compare-and-swap ref updates.

dulwich's own handler reports "ok" even when `set_if_equals` found the ref moved, and
runs hooks at points that cannot see the pack; this subclass takes over the step that
stores the pack and moves the refs.
"""

from __future__ import annotations

import zlib
from binascii import hexlify, unhexlify
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dulwich.errors import ApplyDeltaError, ChecksumMismatch, ObjectFormatException
from dulwich.object_store import PackInputTooLarge, peel_sha
from dulwich.objects import Commit, ObjectID
from dulwich.protocol import (
    CAPABILITY_ATOMIC,
    CAPABILITY_PUSH_OPTIONS,
    CAPABILITY_SIDE_BAND_64K,
    SIDE_BAND_CHANNEL_PROGRESS,
    ReceivableProtocol,
)
from dulwich.refs import DiskRefsContainer, Ref, check_ref_format
from dulwich.server import ReceivePackHandler

from amphub.config import Config
from amphub.errors import DISK_FULL, is_disk_full
from amphub.git.backend import disk_repo
from amphub.git.pack_limits import ChainTooDeep, ObjectTooLarge, add_checked_pack, paths_of
from amphub.git.packfile import raw_loader
from amphub.git.reach import TAG
from amphub.services.push import ZERO, RefUpdate
from amphub.storage.git_objects import object_kind
from amphub.storage.repos import DEFAULT_BRANCH
from amphub.units import human_size

PUSHABLE = (b"refs/heads/", b"refs/tags/")
# A ref is a file under refs/: its name must fit a file system's path limit with room.
MAX_REF_NAME = 1024
# A pack with no objects (header and checksum): what git sends for a new branch or tag at a
# commit the repository has. Any object makes a pack longer, so it fits a full space.
EMPTY_PACK_BYTES = 32
# Reading an object rebuilds its delta chain; git's own packs stop at 50.
MAX_DELTA_DEPTH = 1000
STALE = b"stale info: the ref was changed by another push; fetch and try again"
PACK_ERRORS = (
    OSError,
    ChecksumMismatch,
    ApplyDeltaError,
    AssertionError,
    zlib.error,
    ObjectFormatException,
    ValueError,
)


class AmphubReceivePackHandler(ReceivePackHandler):
    """Stores the pack within the quota, then moves each ref only from its old value.

    The caller holds the repository's lock for the whole push, so partial packs of a
    failed push can be removed without touching another push's files.
    """

    max_pack_bytes: int = 0
    max_file_size: int = Config.max_git_file_size
    quota_refusal: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updated: list[RefUpdate] = []
        self.push_options: list[str] = []
        self._refs_under: dict[bytes, bytes] | None = None  # ref or folder -> a ref there

    def capabilities(self) -> list[bytes]:
        """dulwich's, with push options (`git push -o`)."""
        return [*super().capabilities(), CAPABILITY_PUSH_OPTIONS]

    def _apply_pack(
        self, refs: list[tuple[ObjectID, ObjectID, Ref]]
    ) -> Iterator[tuple[bytes, bytes]]:
        if self.has_capability(CAPABILITY_PUSH_OPTIONS):  # sent between commands and pack
            while (line := self.proto.read_pkt_line()) is not None:
                self.push_options.append(line.decode(errors="replace"))
        commands = [RefUpdate(ref, old, new) for old, new, ref in refs]
        if any(c.new != ZERO for c in commands):
            error = self._store_pack([unhexlify(c.new) for c in commands if c.new != ZERO])
            if error:
                yield (b"unpack", error)
                return
        yield (b"unpack", b"ok")
        problems = {c.ref: self._problem(c) for c in commands}
        if self.has_capability(CAPABILITY_ATOMIC) and any(problems.values()):
            for c in commands:
                yield (c.ref, problems[c.ref] or b"atomic push failed")
            return
        created = self._create([c for c in commands if not problems[c.ref] and c.old == ZERO])
        for c in commands:
            status = problems[c.ref] or (created[c.ref] if c.ref in created else self._move(c))
            if status is None:
                self.updated.append(c)
            yield (c.ref, status or b"ok")

    def _store_pack(self, commits: list[bytes]) -> bytes | None:
        """Read the pack into the store; the unpack error, or None when it was stored."""
        store = disk_repo(self.repo).object_store
        if not isinstance(self.proto, ReceivableProtocol):
            raise TypeError("receive-pack reads the pack through a ReceivableProtocol")
        try:
            pack = add_checked_pack(
                store,
                self.proto.read,
                self.proto.recv,
                max_input_size=self.max_pack_bytes or None,
                max_object_size=self.max_file_size,
                max_depth=MAX_DELTA_DEPTH,
            )
        except PackInputTooLarge:
            self._discard_partial_packs()
            self._tell(self.quota_refusal)
            return b"quota exceeded"
        except ObjectTooLarge as exc:
            self._discard_partial_packs()
            self._tell(self._too_large(exc, commits))
            return b"file too large for git: track it with git lfs"
        except ChainTooDeep:
            self._discard_partial_packs()
            self._tell(
                f"a delta chain of the pack is deeper than {MAX_DELTA_DEPTH};"
                " git writes chains of at most 50 unless its pack.depth is raised"
            )
            return b"delta chain too deep"
        except PACK_ERRORS as exc:
            self._discard_partial_packs()
            if is_disk_full(exc):
                self._tell(DISK_FULL)
                return b"the server's disk is full"
            return f"error: {exc}".replace("\n", " ").encode()
        except BaseException:
            self._discard_partial_packs()
            raise
        if not len(pack):
            # Kept, an empty pack would count against the quota; git keeps none either.
            # (dulwich 1.2's own way to drop a pack from the store and its cache.)
            store._remove_pack(pack)
        return None

    def _too_large(self, exc: ObjectTooLarge, commits: list[bytes]) -> str:
        """The refusal of an oversized file, naming it when the pushed trees tell which."""
        store = self.repo.object_store
        pushed = exc.pushed

        def unknown(sha: bytes) -> bool:
            if exc.sha:
                return sha == exc.sha
            return sha not in pushed.blobs and ObjectID(hexlify(sha)) not in store

        try:
            paths = paths_of(pushed, raw_loader(store), commits, unknown)
        except (KeyError, ValueError):
            paths = []
        limit = human_size(self.max_file_size)
        what = f"a file of {human_size(exc.size)}"
        if len(paths) == 1:
            what = f"{paths[0]} ({human_size(exc.size)})"
        elif paths:
            what += " (one of " + ", ".join(paths[:5]) + ")"
        track = f'git lfs track "{paths[0]}"' if len(paths) == 1 else "git lfs track"
        return (
            f"{what} is larger than the {limit} a file may have in git on this server:"
            f" track it with `{track}`, commit it again and push"
        )

    def _discard_partial_packs(self) -> None:
        for partial in Path(disk_repo(self.repo).object_store.path).glob("tmp_pack_*"):
            partial.unlink(missing_ok=True)

    def _tell(self, message: str) -> None:
        """A line that git prints as `remote: ...`."""
        if message and self.has_capability(CAPABILITY_SIDE_BAND_64K):
            self.proto.write_sideband(SIDE_BAND_CHANNEL_PROGRESS, message.encode() + b"\n")

    def _peeled(self, sha: ObjectID) -> ObjectID | None:
        """The commit (or tree, blob) an annotated tag points at; None for anything else."""
        store = self.repo.object_store
        if object_kind(store, sha) != TAG:
            return None
        return peel_sha(store, sha)[1].id

    def _problem(self, command: RefUpdate) -> bytes | None:
        """Why the command cannot be applied, or None."""
        ref, new = command.ref, ObjectID(command.new)
        if not ref.startswith(PUSHABLE) or not check_ref_format(Ref(ref)):
            return b"only branches (refs/heads/...) and tags (refs/tags/...) can be pushed"
        if len(ref) > MAX_REF_NAME:
            return b"ref name longer than %d bytes" % MAX_REF_NAME
        if ref == b"refs/heads/HEAD":
            return b"HEAD is not a valid branch name"
        if command.old == ZERO and new != ZERO:
            clash = self._clashing_ref(ref)
            if clash is not None:
                return b"cannot create " + ref + b": " + clash + b" exists; delete it first"
        if new == ZERO:
            if ref == DEFAULT_BRANCH:
                return b"master is the model's default branch and cannot be deleted"
            return None
        store = self.repo.object_store
        if new not in store:
            return b"missing object " + new
        if ref.startswith(b"refs/heads/") and not isinstance(store[new], Commit):
            return b"a branch must point at a commit"
        return None

    def _clashing_ref(self, ref: bytes) -> bytes | None:
        """A ref that `ref` cannot live beside: `a` blocks `a/b` and `a/b` blocks `a`."""
        if self._refs_under is None:  # the refs before the push, read once for all commands
            self._refs_under = {}
            for existing in self.repo.refs.allkeys():
                self._refs_under[existing] = existing
                for end in range(len(existing)):
                    if existing[end] == ord("/"):
                        self._refs_under.setdefault(existing[:end], existing)
        if ref in self._refs_under:
            return self._refs_under[ref]
        for end in range(len(ref)):
            if ref[end] == ord("/") and self._refs_under.get(ref[:end]) == ref[:end]:
                return ref[:end]
        return None

    def _create(self, commands: list[RefUpdate]) -> dict[bytes, bytes | None]:
        """Create refs in one write of packed-refs; each one's status (None when created).

        One write, and one disk flush, for a push of thousands of tags instead of one per
        ref. Every writer of refs holds the repository's lock, which the caller holds.
        """
        refs, created = self.repo.refs, {}
        if not isinstance(refs, DiskRefsContainer):
            raise TypeError("refs are created in a repository on disk")
        statuses: dict[bytes, bytes | None] = {}
        for c in commands:
            if c.new == ZERO:
                continue
            taken = Ref(c.ref) in refs or c.ref in statuses
            statuses[c.ref] = STALE if taken else None
            if not taken:
                created[Ref(c.ref)] = ObjectID(c.new)
        for ref in list(created):  # `a` and `a/b` in one push: `a` is created
            folders = (ref[:end] for end in range(len(ref)) if ref[end] == ord("/"))
            if clash := next((f for f in folders if f in created), None):
                del created[ref]
                statuses[ref] = b"cannot create " + ref + b": " + clash + b" is pushed too"
        # add_packed_refs writes the peeled values it holds (dulwich 1.2 keeps them in
        # `_peeled_refs`, loaded by get_packed_refs): an annotated tag's are added there.
        peeled = {ref: self._peeled(sha) for ref, sha in created.items()}
        refs.get_packed_refs()
        if refs._peeled_refs is not None:
            refs._peeled_refs.update({ref: sha for ref, sha in peeled.items() if sha is not None})
        refs.add_packed_refs(created)
        return statuses

    def _move(self, command: RefUpdate) -> bytes | None:
        """Move the ref if it still has the value the client saw; None on success."""
        refs = self.repo.refs
        ref, old, new = Ref(command.ref), ObjectID(command.old), ObjectID(command.new)
        if new == ZERO:
            done = refs.remove_if_equals(ref, old)
        elif old == ZERO:
            done = refs.add_if_new(ref, new)
        else:
            done = refs.set_if_equals(ref, old, new)
        return None if done else STALE

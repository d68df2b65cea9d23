"""receive-pack with amphub's rules: checked ref names and compare-and-swap ref updates.

dulwich's own handler reports "ok" even when `set_if_equals` found the ref moved, and
runs hooks at points that cannot see the pack; this subclass takes over the step that
stores the pack and moves the refs.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from dulwich.errors import ApplyDeltaError, ChecksumMismatch, ObjectFormatException
from dulwich.objects import Commit, ObjectID
from dulwich.protocol import CAPABILITY_ATOMIC
from dulwich.refs import Ref, check_ref_format
from dulwich.server import ReceivePackHandler

from amphub.git.repos import DEFAULT_BRANCH

ZERO = ObjectID(b"0" * 40)
PUSHABLE = (b"refs/heads/", b"refs/tags/")
PACK_ERRORS = (
    OSError,
    ChecksumMismatch,
    ApplyDeltaError,
    AssertionError,
    zlib.error,
    ObjectFormatException,
    ValueError,
)


@dataclass(frozen=True)
class RefUpdate:
    """One ref command of a push."""

    ref: bytes
    old: bytes
    new: bytes


class AmphubReceivePackHandler(ReceivePackHandler):
    """Stores the pack, then moves refs one repository at a time, each only from its old value."""

    repo_lock: threading.Lock
    updated: list[RefUpdate]

    def _apply_pack(
        self, refs: list[tuple[ObjectID, ObjectID, Ref]]
    ) -> Iterator[tuple[bytes, bytes]]:
        commands = [RefUpdate(ref, old, new) for old, new, ref in refs]
        self.updated = []
        if any(c.new != ZERO for c in commands):
            try:
                self.repo.object_store.add_thin_pack(self.proto.read, self.proto.recv)
            except PACK_ERRORS as exc:
                yield (b"unpack", f"error: {exc}".replace("\n", " ").encode())
                return
        yield (b"unpack", b"ok")
        with self.repo_lock:
            problems = {c.ref: self._problem(c) for c in commands}
            if self.has_capability(CAPABILITY_ATOMIC) and any(problems.values()):
                for c in commands:
                    yield (c.ref, problems[c.ref] or b"atomic push failed")
                return
            for c in commands:
                status = problems[c.ref] or self._move(c)
                if status is None:
                    self.updated.append(c)
                yield (c.ref, status or b"ok")

    def _problem(self, command: RefUpdate) -> bytes | None:
        """Why the command cannot be applied, or None."""
        ref, new = command.ref, command.new
        if not ref.startswith(PUSHABLE) or not check_ref_format(ref):
            return b"only branches (refs/heads/...) and tags (refs/tags/...) can be pushed"
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

    def _move(self, command: RefUpdate) -> bytes | None:
        """Move the ref if it still has the value the client saw; None on success."""
        refs = self.repo.refs
        if command.new == ZERO:
            done = refs.remove_if_equals(command.ref, command.old)
        elif command.old == ZERO:
            done = refs.add_if_new(command.ref, command.new)
        else:
            done = refs.set_if_equals(command.ref, command.old, command.new)
        if not done:
            return b"stale info: the ref was changed by another push; fetch and try again"
        return None

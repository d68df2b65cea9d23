"""The LFS object store: objects by sha256, written whole or not at all, behind one protocol.

`LocalObjectStore` (amphub.storage.local_objects) keeps them in the data dir; another
store (object storage) is added by writing one more implementation of `ObjectStore`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

OID = re.compile(r"[0-9a-f]{64}")


class InvalidOid(ValueError):
    """An oid that is not 64 lowercase hex characters."""


class ObjectMismatch(ValueError):
    """The bytes received are not the object that was announced."""


def check_oid(oid: str) -> str:
    """The oid, if it is 64 lowercase hex characters; checked before any path is built."""
    if not OID.fullmatch(oid):
        raise InvalidOid(f"invalid oid {oid[:80]!r}: expected 64 lowercase hex characters")
    return oid


def hashes_to(fileno: int, size: int, oid: str, piece: int = 1024 * 1024) -> bool:
    """Whether the first `size` bytes of an open file hash to `oid`.

    Reads by offset, so whoever else reads the same file (sendfile) is not disturbed.
    """
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        data = os.pread(fileno, min(piece, size - offset), offset)
        if not data:
            return False
        digest.update(data)
        offset += len(data)
    return digest.hexdigest() == oid


class ObjectUpload(Protocol):
    """One object being received: counted, hashed and written, then stored whole.

    `hash` and `write` of one piece may run at the same time on two threads; pieces come
    in order. Every call but `accept` blocks.
    """

    def accept(self, length: int) -> None:
        """Count bytes about to come; raises ObjectMismatch past the announced size."""
        ...

    def hash(self, data: bytes) -> None:
        """Add a piece to the hash."""
        ...

    def write(self, data: bytes) -> None:
        """Write a piece."""
        ...

    def commit(self) -> None:
        """Check size and hash, then store the object; raises ObjectMismatch if wrong."""
        ...

    def abort(self) -> None:
        """Drop what was received."""
        ...


class ObjectStore(Protocol):
    """Where LFS objects are kept. Every method but `path` blocks."""

    tmp: Path

    def path(self, oid: str) -> Path:
        """Where an object's bytes can be read."""
        ...

    def contains(self, oid: str) -> bool:
        """Whether the object is stored."""
        ...

    def open_upload(self, oid: str, size: int) -> ObjectUpload:
        """Start receiving an object."""
        ...

    def put_group(self, objects: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        """Store small objects received whole; per object, None or what refused it."""
        ...

    def prepare_folders(self, oids: Iterable[str]) -> None:
        """Get ready for objects about to be uploaded."""
        ...

    def remove(self, oid: str) -> None:
        """Delete an object if it is there."""
        ...

    def intact(self, oid: str, size: int) -> bool:
        """Whether the object is stored with `size` bytes that hash to its oid (reads all)."""
        ...

    def quarantine(self, oid: str) -> None:
        """Move a damaged object out of the store, kept aside; a new upload replaces it."""
        ...

    def free_bytes(self) -> int:
        """Bytes the store can still take."""
        ...

    def stored(self) -> Iterator[tuple[str, int, float]]:
        """(oid, size, seconds since it was written) of every object stored."""
        ...

    def scratch(self, older_than: float) -> list[Path]:
        """Half-received objects untouched for `older_than` seconds (a live upload's are not)."""
        ...

    def remove_scratch(self, found: list[Path]) -> None:
        """Remove half-received objects that `scratch` found."""
        ...

    def remove_leftovers(self) -> int:
        """Delete what an earlier run left half-received; returns how many."""
        ...

"""The content-addressed object store: lfs/objects/ab/cd/<oid>, written whole or not at all."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

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


class ObjectStore:
    """Objects under `root`, staged in `tmp` on the same file system."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp

    def path(self, oid: str) -> Path:
        """Where an object lives."""
        check_oid(oid)
        return self.root / oid[:2] / oid[2:4] / oid

    def contains(self, oid: str) -> bool:
        """Whether the object is stored."""
        return self.path(oid).is_file()

    def open_upload(self, oid: str, size: int) -> Upload:
        """Start receiving an object."""
        return Upload(self, check_oid(oid), size)

    def remove(self, oid: str) -> None:
        """Delete an object's file if it is there."""
        self.path(oid).unlink(missing_ok=True)


class Upload:
    """One object being received: hashed while written to a temporary file."""

    def __init__(self, store: ObjectStore, oid: str, size: int) -> None:
        self.store = store
        self.oid = oid
        self.size = size
        self.received = 0
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=store.tmp, prefix="lfs-", suffix=".part")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._temp = Path(name)

    def write(self, data: bytes) -> None:
        """Append bytes; refuses more than the announced size."""
        self.received += len(data)
        if self.received > self.size:
            raise ObjectMismatch(f"more than the announced {self.size} bytes were sent")
        self._hash.update(data)
        self._file.write(data)

    def commit(self) -> None:
        """Check size and hash, make the bytes durable and move them into place."""
        try:
            if self.received != self.size:
                raise ObjectMismatch(f"received {self.received} bytes, expected {self.size}")
            if self._hash.hexdigest() != self.oid:
                raise ObjectMismatch("the content does not match its oid (sha256)")
            os.fsync(self._file.fileno())
            self._file.close()
            target = self.store.path(self.oid)
            if target.is_file():
                return  # the same bytes are stored already
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._temp, target)
            _fsync_dir(target.parent)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop whatever was received."""
        self._file.close()
        self._temp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

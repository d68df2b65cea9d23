"""The content-addressed object store: lfs/objects/ab/cd/<oid>, written whole or not at all."""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
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
    """One object being received: counted, hashed and written, then moved in whole.

    `hash` and `write` of one piece may run at the same time on two threads (hashlib and
    file writes release the GIL); pieces themselves must come in order.
    """

    def __init__(self, store: ObjectStore, oid: str, size: int) -> None:
        self.store = store
        self.oid = oid
        self.size = size
        self.received = 0
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=store.tmp, prefix="lfs-", suffix=".part")
        self._fd = fd
        self._written = 0
        self._temp: Path | None = Path(name)

    def accept(self, length: int) -> None:
        """Count a piece before it is hashed and written; refuses more than announced."""
        self.received += length
        if self.received > self.size:
            raise ObjectMismatch(f"more than the announced {self.size} bytes were sent")

    def hash(self, data: bytes) -> None:
        """Feed a piece to the hash."""
        self._hash.update(data)

    def write(self, data: bytes) -> None:
        """Append a piece to the file and, unless it is the last, start writing it to disk."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._written + len(data) < self.size:  # the last one is written by commit's fsync
            _start_writeback(self._fd, self._written, len(data))
        self._written += len(data)

    def commit(self) -> None:
        """Check size and hash, make the bytes durable and move them into place."""
        try:
            if self.received != self.size:
                raise ObjectMismatch(f"received {self.received} bytes, expected {self.size}")
            if self._hash.hexdigest() != self.oid:
                raise ObjectMismatch("the content does not match its oid (sha256)")
            target = self.store.path(self.oid)
            if not _new_folder(target.parent) and target.is_file():
                return  # the same bytes are stored already
            os.fsync(self._fd)
            os.replace(self._temp, target)
            self._temp = None
            _fsync_dir(target.parent)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop whatever was received (nothing once committed)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


def put_small(store: ObjectStore, oid: str, data: bytes) -> None:
    """Store an object received whole, in one go."""
    upload = store.open_upload(oid, len(data))
    upload.accept(len(data))
    upload.hash(data)
    upload.write(data)
    upload.commit()


def _new_folder(path: Path) -> bool:
    """Make sure a folder exists; True if this call made it (so the object is not in it).

    A folder made here is made durable in its parent (and a parent made with it, in its
    own), so that an object acknowledged in it survives a crash with its path.
    """
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)
        _fsync_dir(path.parent.parent)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE = _load_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    # Linux starts writing the piece to disk now instead of at the final fsync, so the
    # acknowledgement of a large upload does not wait for a gigabyte of dirty pages.
    if _SYNC_FILE_RANGE is not None and length:
        _SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)

"""The content-addressed object store: lfs/objects/ab/cd/<oid>, written whole or not at all.

An object is received into a temporary file in its own folder and renamed into place: a
rename within one folder does not take the file system's rename lock, and new files spread
over the folders' block groups instead of crowding one scratch folder (measured here: 2x
the objects per second, half the kernel time). Temporary names carry the store's start tag,
so those of an earlier run (a crash) can be told apart and removed while uploads go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import itertools
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from amphub.storage.objects import PIECE, ObjectMismatch, Runner, check_oid

T = TypeVar("T")

FOLDERS = 16**4  # lfs/objects/ab/cd
PARENT_FOLDERS = 16**2  # lfs/objects/ab
TEMP_SUFFIX = ".part"
READ_PIECE = 1024 * 1024


async def _to_thread(work: Callable[[], T]) -> T:
    return await asyncio.to_thread(work)


class LocalObjectStore:
    """Objects under `root`; other scratch files in `tmp`, on the same file system.

    File work runs on the threads `run` gives (the hub's).
    """

    def __init__(self, root: Path, tmp: Path, run: Runner = _to_thread) -> None:
        self.root = root
        self.tmp = tmp
        self.run = run
        self.direct_uploads = False
        self.quarantine_dir = root.parent / "quarantine"
        # An upload's paths are built as strings: pathlib spends more time per object than
        # the system calls they name.
        self._root = str(root)
        self._tag = secrets.token_hex(4)
        self._temp_numbers = itertools.count()
        # One flag per `ab/cd` folder, and per `ab`: set once the folder is known to be on
        # disk with its name, so an object acknowledged in it survives a crash with its path.
        self._durable_folders = bytearray(FOLDERS)
        self._durable_parents = bytearray(PARENT_FOLDERS)

    async def open(self) -> None:
        """Nothing to open: the folders are made with the data dir."""

    async def reachable(self) -> None:
        """Return once the store's folder was found usable; raises OSError if it is not."""
        await self.run(partial(usable_folder, self.root))

    def path(self, oid: str) -> Path:
        """Where an object lives."""
        return Path(self.folder(oid), oid)

    def file(self, oid: str) -> Path:
        """The object's file."""
        return self.path(oid)

    async def size(self, oid: str) -> int | None:
        """The stored object's size, None if it is not stored."""
        return await self.run(partial(_size, self.path(oid)))

    async def read(self, oid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes from `start` up to `end` (exclusive), in pieces."""
        file = await self.run(partial(open, self.path(oid), "rb"))
        try:
            await self.run(partial(file.seek, start))
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                wanted = PIECE if remaining is None else min(remaining, PIECE)
                piece = await self.run(partial(file.read, wanted))
                if not piece:
                    break
                if remaining is not None:
                    remaining -= len(piece)
                yield piece
        finally:
            file.close()

    async def written_ago(self, oid: str) -> float | None:
        """Seconds since the object's file was last written; None if there is none."""
        return await self.run(partial(_written_ago, self.path(oid)))

    async def download_url(self, oid: str, seconds: int, disposition: str | None = None) -> None:
        """None: the bytes come from amphub (with sendfile)."""
        return None

    async def presign_upload(self, oid: str, size: int, ticket: str, seconds: int) -> None:
        """None: the bytes go through amphub."""
        return None

    async def adopt(self, oid: str, ticket: str) -> None:
        """None: nothing is put but through amphub."""
        return None

    def folder(self, oid: str) -> str:
        """The folder an object lives in."""
        check_oid(oid)
        return f"{self._root}/{oid[:2]}/{oid[2:4]}"

    async def open_upload(self, oid: str, size: int) -> Upload:
        """Start receiving an object."""
        return await self.run(partial(Upload, self, check_oid(oid), size))

    async def prepare_folders(self, oids: Iterable[str]) -> None:
        """Make the folders of objects about to be uploaded durable (see `_prepare_folders`)."""
        await self.run(partial(self._prepare_folders, list(oids)))

    def _prepare_folders(self, oids: Iterable[str]) -> None:
        """Make the folders of objects about to be uploaded durable, all with one disk flush.

        An object whose folder is durable already costs two disk flushes (its bytes, its
        name) instead of three; the batch call that announces uploads prepares their folders.
        """
        made = [oid for oid in oids if not self._durable_folders[_folder_index(oid)]]
        for oid in made:
            self.path(oid).parent.mkdir(parents=True, exist_ok=True)
        if made:
            sync_file_system(self.root)
        for oid in made:
            self._durable_folders[_folder_index(oid)] = 1
            self._durable_parents[_folder_index(oid) >> 8] = 1

    def folder_for(self, oid: str) -> None:
        """Make sure the object's folder is on disk, with its name."""
        index = _folder_index(oid)
        if self._durable_folders[index]:
            return
        os.makedirs(self.folder(oid), exist_ok=True)
        if not self._durable_parents[index >> 8]:
            fsync_path(self.root)
            self._durable_parents[index >> 8] = 1
        fsync_path(os.path.dirname(self.folder(oid)))
        self._durable_folders[index] = 1

    def temp_path(self, folder: str) -> str:
        """A new name for receiving an object in its folder."""
        return f"{folder}/{self._tag}-{next(self._temp_numbers)}{TEMP_SUFFIX}"

    async def remove(self, oid: str) -> None:
        """Delete an object's file if it is there."""
        await self.run(partial(self.path(oid).unlink, missing_ok=True))

    async def intact(self, oid: str, size: int) -> bool:
        """Whether the object is stored with `size` bytes that hash to its oid (reads all)."""
        return await self.run(partial(self._intact, oid, size))

    def _intact(self, oid: str, size: int) -> bool:
        digest = hashlib.sha256()
        try:
            with self.path(oid).open("rb") as file:
                if os.fstat(file.fileno()).st_size != size:
                    return False
                while piece := file.read(READ_PIECE):
                    digest.update(piece)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == oid

    async def quarantine(self, oid: str) -> None:
        """Move a damaged object to lfs/quarantine/; a new upload replaces it."""
        await self.run(partial(self._quarantine, oid))

    def _quarantine(self, oid: str) -> None:
        self.quarantine_dir.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path(oid), self.quarantine_dir / oid)

    async def put_group(self, objects: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        """Store small objects received whole, with two disk flushes for all of them."""
        return await self.run(partial(put_group, self, objects))

    async def free_bytes(self) -> int:
        """Bytes the file system under the store can still take."""
        return (await self.run(partial(shutil.disk_usage, self.root))).free

    async def stored(self) -> AsyncIterator[tuple[str, int, float]]:
        """(oid, size, seconds since it was written) of every object stored."""
        for found in await self.run(lambda: list(self._stored())):
            yield found

    def _stored(self) -> Iterable[tuple[str, int, float]]:
        now = time.time()
        for folder in self.root.glob("??/??"):
            with os.scandir(folder) as entries:
                for entry in entries:
                    if len(entry.name) == 64 and not entry.name.endswith(TEMP_SUFFIX):
                        with contextlib.suppress(FileNotFoundError):
                            info = entry.stat()
                            yield entry.name, info.st_size, now - info.st_mtime

    async def scratch(self, older_than: float) -> list[str]:
        """Half-received objects untouched for `older_than` seconds (a live upload's are not)."""
        return await self.run(partial(self._scratch, older_than))

    def _scratch(self, older_than: float) -> list[str]:
        now = time.time()
        found = []
        for temp in self.root.glob(f"*/*/*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if now - temp.stat().st_mtime >= older_than:
                    found.append(str(temp))
        return found

    async def remove_scratch(self, found: list[str]) -> None:
        """Remove half-received objects that `scratch` found."""
        await self.run(partial(_unlink_all, found))

    async def remove_leftovers(self) -> int:
        """Delete temporary files an earlier run left (a crash); returns how many."""
        return await self.run(self._remove_leftovers)

    async def close(self) -> None:
        """Nothing to let go of."""

    def _remove_leftovers(self) -> int:
        removed = 0
        for temp in self.root.glob(f"*/*/*{TEMP_SUFFIX}"):
            if not temp.name.startswith(f"{self._tag}-"):
                temp.unlink(missing_ok=True)
                removed += 1
        return removed


class Upload:
    """One object being received: counted, hashed and written, then moved in whole.

    `hash` and `write` of one piece may run at the same time on two threads (hashlib and
    file writes release the GIL); pieces themselves must come in order.
    """

    def __init__(self, store: LocalObjectStore, oid: str, size: int) -> None:
        self.store = store
        self.oid = oid
        self.size = size
        self.received = 0
        self._hash = hashlib.sha256()
        store.folder_for(oid)
        self._folder = store.folder(oid)
        temp = store.temp_path(self._folder)
        self._fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._written = 0
        self._temp: str | None = temp

    def accept(self, length: int) -> None:
        """Count a piece before it is hashed and written; refuses more than announced."""
        self.received += length
        if self.received > self.size:
            raise ObjectMismatch(f"more than the announced {self.size} bytes were sent")

    async def add(self, data: bytes) -> None:
        """Hash and write a piece on two threads at once (hashlib and writes release the GIL)."""
        run = self.store.run
        await asyncio.gather(run(partial(self.hash, data)), run(partial(self.write, data)))

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

    async def commit(self) -> None:
        """Check size and hash, make the bytes durable and move them into place."""
        await self.store.run(self.commit_now)

    async def abort(self) -> None:
        """Drop whatever was received (nothing once committed)."""
        await self.store.run(self.abort_now)

    def commit_now(self) -> None:
        """Check size and hash, make the bytes durable and move them into place (blocks).

        Checked bytes replace a file stored already: that one may have been damaged.
        """
        try:
            if self.received != self.size:
                raise ObjectMismatch(f"received {self.received} bytes, expected {self.size}")
            if self._hash.hexdigest() != self.oid:
                raise ObjectMismatch("the content does not match its oid (sha256)")
            target = f"{self._folder}/{self.oid}"
            if self._temp is None:
                raise ObjectMismatch("the upload was given up already")
            os.fsync(self._fd)
            os.replace(self._temp, target)
            self._temp = None
            fsync_path(self._folder)
        finally:
            self.abort_now()

    def abort_now(self) -> None:
        """Drop whatever was received, nothing once committed (blocks)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp)
            self._temp = None


def put_group(
    store: LocalObjectStore, objects: Sequence[tuple[str, bytes]]
) -> list[Exception | None]:
    """Store objects received whole, with two disk flushes for all: their bytes, their names.

    Each is checked and written to a temporary file beside its place; once all their bytes
    are on disk they are renamed into place (over a file stored already), and
    the call returns once the names are on disk too. An object that fails fails alone: its
    entry is the exception, the others' None. A failed flush fails them all (raises).
    A group of one is flushed by fsyncs of its own (see `_flush`).
    """
    outcomes: list[Exception | None] = []
    moves: list[tuple[str, str]] = []  # (temporary file, final place)
    try:
        for oid, data in objects:
            try:
                moves.append(_write_temp(store, oid, data))
            except (ObjectMismatch, OSError) as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        if moves:
            _flush(store, [temp for temp, _ in moves])
            for temp, target in moves:
                os.replace(temp, target)  # checked bytes replace what may have been damaged
            folders, moves = [os.path.dirname(target) for _, target in moves], []
            _flush(store, folders)
    finally:
        for temp, _ in moves:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return outcomes


def _write_temp(store: LocalObjectStore, oid: str, data: bytes) -> tuple[str, str]:
    """Check an object and write it to a new temporary file in its folder, not flushed."""
    if hashlib.sha256(data).hexdigest() != check_oid(oid):
        raise ObjectMismatch("the content does not match its oid (sha256)")
    store.folder_for(oid)
    folder = store.folder(oid)
    temp = store.temp_path(folder)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.unlink(temp)
        raise
    finally:
        os.close(fd)
    return temp, f"{folder}/{oid}"


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _written_ago(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _folder_index(oid: str) -> int:
    return int(oid[:4], 16)


def _flush(store: LocalObjectStore, paths: list[str]) -> None:
    """Put files or folders on disk: one by itself, several with one flush of everything.

    A flush of the whole file system also waits for whatever else is still to be written;
    an object uploaded alone (a quiet server) waits for nothing but itself.
    """
    if len(paths) == 1:
        fsync_path(paths[0])
    else:
        sync_file_system(store.root)


def fsync_path(path: Path | str) -> None:
    """Write a folder or a file to disk (a file opened for reading: fsync writes its data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_libc_function(name: str, *argtypes: object) -> Callable[..., int] | None:
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (AttributeError, OSError):
        return None
    function.argtypes = list(argtypes)
    return function


_SYNCFS = _load_libc_function("syncfs", ctypes.c_int)
_SYNC_FILE_RANGE = _load_libc_function(
    "sync_file_range", ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint
)
SYNC_FILE_RANGE_WRITE = 2


def sync_file_system(path: Path) -> None:
    """Write out everything changed on the file system of `path`, with one disk flush."""
    if _SYNCFS is None:
        os.sync()  # every file system: only where syncfs is missing
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number), str(path))
    finally:
        os.close(fd)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    # Linux starts writing the piece to disk now instead of at the final fsync, so the
    # acknowledgement of a large upload does not wait for a gigabyte of dirty pages.
    if _SYNC_FILE_RANGE is not None and length:
        _SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def usable_folder(folder: Path) -> None:
    """Raise unless the folder is there and this process may read and write in it."""
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        raise PermissionError(folder)

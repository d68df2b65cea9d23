"""The LFS object store: objects by sha256, written whole or not at all, behind one protocol.

`LocalObjectStore` (amphub.storage.local_objects) keeps them in the data dir and
`S3ObjectStore` (amphub.storage.s3_objects) in an S3-compatible bucket; `object_stores.object_store`
picks one by the `storage` setting. Every method is async and streams: the S3 store waits
on the network without holding a thread, the local store runs its file work on the
hub's threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")
# Runs blocking work on a thread (the hub's `run_blocking`).
Runner = Callable[[Callable[[], T]], Awaitable[T]]

OID = re.compile(r"[0-9a-f]{64}")
# Objects are read, written and hashed in pieces of this size.
PIECE = 4 * 1024 * 1024


class InvalidOid(ValueError):
    """An oid that is not 64 lowercase hex characters."""


class ObjectMismatch(ValueError):
    """The bytes received are not the object that was announced."""


class StoreUnusable(RuntimeError):
    """The object store cannot be reached or written; the message says why, in one sentence."""


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


class PieceSink(Protocol):
    """Where `fill` puts what arrives: counted, then hashed and written a piece at a time.

    Pieces come in order; `add` of one piece may overlap the reading of the next.
    """

    def accept(self, length: int) -> None:
        """Count bytes about to come; raises past the announced size."""
        ...

    async def add(self, data: bytes) -> None:
        """Hash and write a piece."""
        ...


class ObjectUpload(PieceSink, Protocol):
    """One object being received: counted, hashed and written, then stored whole."""

    async def commit(self) -> None:
        """Check size and hash, then store the object; raises ObjectMismatch if wrong."""
        ...

    async def abort(self) -> None:
        """Drop what was received."""
        ...


async def fill(upload: PieceSink, chunks: AsyncIterator[bytes]) -> None:
    """Feed an upload what arrives, PIECE bytes at a time, each written as the next arrives.

    Network reads come in small chunks: handing each to `add` on its own would cost two
    thread hops per few kilobytes.
    """
    pending: asyncio.Future[None] | None = None
    parts: list[bytes] = []
    buffered = 0
    try:
        async for chunk in chunks:
            upload.accept(len(chunk))
            parts.append(chunk)
            buffered += len(chunk)
            if buffered >= PIECE:
                if pending:
                    await pending
                piece, parts, buffered = b"".join(parts), [], 0
                pending = asyncio.ensure_future(upload.add(piece))
        if pending:
            await pending
        await upload.add(b"".join(parts))
    except BaseException:
        if pending and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)  # abort only once it ended
        raise


class ObjectStore(Protocol):
    """Where LFS objects are kept."""

    tmp: Path
    # Whether clients upload straight to the store by `presign_upload` (set by a probe).
    direct_uploads: bool

    async def open(self) -> None:
        """Get ready, checking that the store can be read and written; raises StoreUnusable."""
        ...

    async def reachable(self) -> None:
        """Return once the store answered; raises what stops it (for a readiness check)."""
        ...

    def file(self, oid: str) -> Path | None:
        """The object's file where the store is a local disk (for sendfile); None elsewhere."""
        ...

    async def size(self, oid: str) -> int | None:
        """The stored object's size, None if it is not stored."""
        ...

    def read(self, oid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes from `start` up to `end` (exclusive), in pieces."""
        ...

    async def written_ago(self, oid: str) -> float | None:
        """Seconds since the object was last written; None if it is not stored."""
        ...

    async def download_url(
        self, oid: str, seconds: int, disposition: str | None = None
    ) -> str | None:
        """A URL the client fetches the object from itself for `seconds`; None: ask amphub.

        The store answers it with `disposition` as Content-Disposition, if given.
        """
        ...

    async def presign_upload(
        self, oid: str, size: int, ticket: str, seconds: int
    ) -> tuple[str, dict[str, str]] | None:
        """A URL and headers to PUT the object to, taking only its bytes; None: use amphub.

        The bytes are marked with `ticket`, the upload's own name, which `adopt` checks.
        """
        ...

    async def adopt(self, oid: str, ticket: str) -> int | None:
        """Have an object put by `presign_upload` in its place; its size, None if not put."""
        ...

    async def open_upload(self, oid: str, size: int) -> ObjectUpload:
        """Start receiving an object."""
        ...

    async def put_group(self, objects: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        """Store small objects received whole; per object, None or what refused it."""
        ...

    async def prepare_folders(self, oids: Iterable[str]) -> None:
        """Get ready for objects about to be uploaded."""
        ...

    async def remove(self, oid: str) -> None:
        """Delete an object if it is there."""
        ...

    async def intact(self, oid: str, size: int) -> bool:
        """Whether the object is stored with `size` bytes that hash to its oid (reads all)."""
        ...

    async def quarantine(self, oid: str) -> None:
        """Move a damaged object out of the store, kept aside; a new upload replaces it."""
        ...

    async def free_bytes(self) -> int:
        """Bytes the store can still take."""
        ...

    def stored(self) -> AsyncIterator[tuple[str, int, float]]:
        """(oid, size, seconds since it was written) of every object stored."""
        ...

    async def scratch(self, older_than: float) -> list[str]:
        """Half-received objects untouched for `older_than` seconds (a live upload's are not)."""
        ...

    async def remove_scratch(self, found: list[str]) -> None:
        """Remove half-received objects that `scratch` found."""
        ...

    async def remove_leftovers(self) -> int:
        """Delete what an earlier run left half-received; returns how many."""
        ...

    async def close(self) -> None:
        """Let go of connections."""
        ...

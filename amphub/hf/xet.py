"""Uploads through Xet, as huggingface_hub makes them when hf_xet is installed.

The client cuts files into chunks, sends them packed in xorbs, then a shard naming each
file's chunk ranges and sha256. amphub keeps each xorb beside the model's repository until
a shard names it, then rebuilds every file of the shard into an ordinary LFS object linked
to the model: checked against its sha256, under the quota, stored once. Where each chunk
landed is remembered, because the client caches what it sent and may name a chunk of an
old xorb in a later upload. The commit that follows is the Hub's usual one, with LFS
pointers. Xet downloads are not offered: files are served by resolve, which clients use
when no Xet hash is announced. There is no global deduplication and no upload grant; the
client falls back from both on a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from amphub import db
from amphub.errors import (
    BadRequest,
    Forbidden,
    LengthRequired,
    NotFound,
    NotOffered,
    PayloadTooLarge,
    QuotaExceeded,
)
from amphub.hf.access import repository, require_repo
from amphub.hf.commit import NO_PULL_REQUESTS
from amphub.hf.paging import flag
from amphub.hf.xetformat import (
    MAX_XORB,
    MalformedXet,
    Segment,
    ShardFile,
    check_hash,
    chunk_headers,
    parse_shard,
    read_chunks,
)
from amphub.http import keys
from amphub.http.access import ModelAccess
from amphub.http.body import BodyTooLong, read_body
from amphub.http.urls import base_url
from amphub.lfs.transfer import transfer_token
from amphub.policy import Action
from amphub.policy.tokens import make_token
from amphub.services.hub import Hub
from amphub.services.leases import claim, reservation_kept
from amphub.services.quota import link_reserved, release_reserved, reserve_quota
from amphub.storage.objects import ObjectMismatch, ObjectStore
from amphub.storage.repos import XET_STAGING_DIR

MAX_SHARD = 64 * 1024 * 1024
# A kept xorb that no shard named for this long belongs to an upload given up on.
ABANDONED_SECONDS = 24 * 3600
# Files of one shard rebuilt at the same time.
PARALLEL_REBUILDS = 4
# Rebuilt files are hashed and written in pieces of this size.
WRITE_PIECE = 4 * 1024 * 1024
NO_XET_DOWNLOADS = (
    "amphub serves files through resolve, not Xet: huggingface_hub downloads them that way"
)


class XetRefused(BadRequest):
    """A xorb or shard that amphub cannot take; the client does not retry a 400."""

    code = "xet_refused"


class XetOverQuota(Forbidden):
    """No room in the space: 403, which hf_xet gives up on at once (it retries a 507)."""

    code = "quota_exceeded"


async def _reserve(hub: Hub, space: db.Space, sizes: dict[str, int]) -> None:
    try:
        await reserve_quota(hub, space, sizes)
    except QuotaExceeded as exc:
        raise XetOverQuota(str(exc)) from None


async def get_xet_token(request: web.Request) -> web.Response:
    """A write token for the model's Xet uploads, and where to send them."""
    if flag(request, "create_pr"):
        raise NotOffered(NO_PULL_REQUESTS)
    access = await require_repo(request, Action.WRITE_FILES)
    space_id, model_id = access.space.id, access.model.id
    token = await transfer_token(request, space_id, model_id)
    return web.json_response(
        {
            "accessToken": make_token(request.app[keys.HUB].secret, token),
            "exp": token.expires,
            "casUrl": f"{base_url(request)}/api/models/{space_id}/{model_id}/xet",
        }
    )


async def get_xet_read_token(request: web.Request) -> web.Response:
    """Refused: downloads go through resolve."""
    raise NotOffered(NO_XET_DOWNLOADS)


async def get_chunk(request: web.Request) -> web.Response:
    """Global deduplication: amphub knows no chunk beyond what the client sent itself."""
    await require_repo(request, Action.WRITE_FILES)
    raise NotFound("amphub offers no global deduplication")


def _staged(request: web.Request, access: ModelAccess) -> Path:
    """Where the model's xorbs wait for their shard: in its repository folder.

    They go with the repository, but its size leaves them out: their reservations count them.
    """
    return repository(request, access) / XET_STAGING_DIR


def _xorb_key(xorb: str) -> str:
    """The name a xorb's reservation goes by, beside the oids of objects."""
    return f"xorb-{xorb}"


def _hash(request: web.Request) -> str:
    try:
        return check_hash(request.match_info["hash"])
    except MalformedXet as exc:
        raise XetRefused(str(exc)) from None


async def post_xorb(request: web.Request) -> web.Response:
    """Receive a xorb: checked chunk by chunk, then kept until a shard names it."""
    access = await require_repo(request, Action.WRITE_FILES)
    xorb = _hash(request)
    size = request.content_length
    if size is None:
        raise LengthRequired("a xorb upload needs a Content-Length")
    if size > MAX_XORB:
        raise PayloadTooLarge(f"a xorb may be at most {MAX_XORB} bytes")
    target = _staged(request, access) / xorb
    if target.is_file():
        await request.release()
        return web.json_response({"was_inserted": False})
    hub = request.app[keys.HUB]
    key = _xorb_key(xorb)
    # Held until a shard names the xorb, or for RESERVATION_SECONDS at most.
    await _reserve(hub, access.space, {key: size})
    try:
        await _receive_xorb(request, target, size)
    except BaseException:
        await release_reserved(hub, access.space.id, key)
        raise
    return web.json_response({"was_inserted": True})


async def _receive_xorb(request: web.Request, target: Path, size: int) -> None:
    """Stream the body to a temporary file, check its chunks, then move it in place."""
    hub = request.app[keys.HUB]
    store: ObjectStore = hub.objects
    fd, name = tempfile.mkstemp(dir=store.tmp, prefix="xorb-")
    try:
        with os.fdopen(fd, "w+b") as stream:
            received = 0
            async for piece in request.content.iter_chunked(WRITE_PIECE):
                received += len(piece)
                if received > size:
                    raise XetRefused(f"more than the announced {size} bytes were sent")
                await hub.run_blocking(partial(stream.write, piece))
            if received != size:
                raise XetRefused(f"received {received} bytes, expected {size}")
            await hub.run_blocking(lambda: _keep_xorb(stream, size, Path(name), target))
    finally:
        Path(name).unlink(missing_ok=True)


def _keep_xorb(stream: BinaryIO, size: int, temp: Path, target: Path) -> None:
    """Check that a received xorb is whole chunks, then move it to `target`."""
    try:
        for _ in chunk_headers(stream, size):
            pass
    except MalformedXet as exc:
        raise XetRefused(str(exc)) from None
    # Not fsynced: a xorb lost in a crash only makes its shard refused (the client then
    # sends everything again); what is stored is checked against its sha256 in any case.
    stream.flush()
    target.parent.mkdir(exist_ok=True)
    os.replace(temp, target)


@dataclass(frozen=True)
class Placed:
    """A chunk found at a byte range of a stored LFS object."""

    xorb: str
    chunk: int
    oid: str
    offset: int
    length: int


async def post_shard(request: web.Request) -> web.Response:
    """Rebuild each file a shard names into an LFS object linked to the model."""
    access = await require_repo(request, Action.WRITE_FILES)
    try:
        body = await read_body(request, MAX_SHARD)
    except BodyTooLong:
        raise PayloadTooLarge(f"a shard may be at most {MAX_SHARD} bytes") from None
    try:
        files = parse_shard(body)
    except MalformedXet as exc:
        raise XetRefused(str(exc)) from None
    hub = request.app[keys.HUB]
    space_id, model_id = access.space.id, access.model.id
    xorbs = {_xorb_key(s.xorb) for f in files for s in f.segments}
    await db.release_reservations(hub.db, space_id, sorted(xorbs))  # its files reserve now
    async with hub.locks.hold(("xet", space_id, model_id)):
        linked = await db.linked_object_sizes(hub.db, space_id, model_id, [f.sha256 for f in files])
        staged = _staged(request, access)
        # A file the model holds is rebuilt only to take in xorbs sent for it again.
        todo = [
            file
            for file in files
            if file.sha256 not in linked or any((staged / s.xorb).is_file() for s in file.segments)
        ]
        running = asyncio.Semaphore(PARALLEL_REBUILDS)

        async def store(file: ShardFile) -> None:
            async with running:
                await _store_file(request, access, file)

        results = await asyncio.gather(*(store(f) for f in todo), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        await _drop_placed_xorbs(request, access, files)
    return web.json_response({"result": 1})


async def _store_file(request: web.Request, access: ModelAccess, file: ShardFile) -> None:
    """Rebuild one file under the quota, store it and link it, remembering its chunks."""
    hub = request.app[keys.HUB]
    space_id, model_id = access.space.id, access.model.id
    oid, size = file.sha256, file.size
    placed = await _placed_chunks(request, access, file)
    await _reserve(hub, access.space, {oid: size})
    staged = _staged(request, access)
    async with (
        reservation_kept(hub, space_id, oid, size) as reserved,
        claim(hub, oid, reserved=reserved),  # garbage collection waits for the link
    ):
        try:
            async with hub.locks.hold(("object", oid)):
                chunks = await _rebuild(hub, staged, oid, size, file.segments, placed)
        except BaseException:
            await release_reserved(hub, space_id, oid)
            raise
        await link_reserved(hub, space_id, model_id, oid, size)  # gives the reservation back
    await db.index_xet_chunks(hub.db, space_id, model_id, chunks)


async def _placed_chunks(
    request: web.Request, access: ModelAccess, file: ShardFile
) -> dict[tuple[str, int], Placed]:
    """Chunks of xorbs no longer kept whole, where earlier uploads to this model stored them."""
    hub = request.app[keys.HUB]
    space_id, model_id = access.space.id, access.model.id
    staged = _staged(request, access)
    placed: dict[tuple[str, int], Placed] = {}
    for segment in file.segments:
        if (staged / segment.xorb).is_file():
            continue
        rows = await db.xet_chunks(
            hub.db, space_id, model_id, segment.xorb, segment.start, segment.end
        )
        linked = await db.linked_object_sizes(
            hub.db, space_id, model_id, list({row[2] for row in rows})
        )
        if len(rows) != segment.end - segment.start or any(r[2] not in linked for r in rows):
            raise XetRefused(
                f"xorb {segment.xorb} was not uploaded to {space_id}/{model_id}; if an earlier"
                " upload to it was deleted, clear hf_xet's cache (~/.cache/huggingface/xet)"
            )
        for xorb, chunk, oid, offset, length in rows:
            placed[(xorb, chunk)] = Placed(xorb, chunk, oid, offset, length)
    return placed


async def _segment_chunks(
    hub: Hub, staged: Path, segment: Segment, placed: dict[tuple[str, int], Placed]
) -> AsyncIterator[tuple[int, bytes]]:
    """(index, bytes) of each chunk of a segment, from its xorb or from where it was stored."""
    if (segment.xorb, segment.start) not in placed:
        chunks = await hub.run_blocking(partial(_xorb_chunks, staged / segment.xorb, segment))
        for found in chunks:
            yield found
        return
    for run in _contiguous([placed[(segment.xorb, i)] for i in range(segment.start, segment.end)]):
        first, last = run[0], run[-1]
        stop = last.offset + last.length
        data = b"".join([p async for p in hub.objects.read(first.oid, first.offset, stop)])
        for where in run:
            start = where.offset - first.offset
            yield where.chunk, data[start : start + where.length]


def _contiguous(chunks: list[Placed], most: int = WRITE_PIECE) -> Iterator[list[Placed]]:
    """Chunks in runs that lie back to back in one object, read with one ranged read each."""
    run: list[Placed] = []
    for where in chunks:
        if run and (
            where.oid != run[-1].oid
            or where.offset != run[-1].offset + run[-1].length
            or where.offset + where.length - run[0].offset > most
        ):
            yield run
            run = []
        run.append(where)
    if run:
        yield run


def _xorb_chunks(xorb: Path, segment: Segment) -> list[tuple[int, bytes]]:
    with xorb.open("rb") as stream:
        length = os.fstat(stream.fileno()).st_size
        chunks = read_chunks(stream, length, segment.start, segment.end)
        return list(enumerate(chunks, start=segment.start))


async def _rebuild(
    hub: Hub,
    staged: Path,
    oid: str,
    size: int,
    segments: tuple[Segment, ...],
    placed: dict[tuple[str, int], Placed],
) -> list[db.XetChunk]:
    """Write a file from its chunks into the store; returns where each chunk landed."""
    upload = await hub.objects.open_upload(oid, size)
    landed: list[db.XetChunk] = []
    offset = 0
    piece: list[bytes] = []
    buffered = 0
    try:
        for segment in segments:
            async for index, data in _segment_chunks(hub, staged, segment, placed):
                upload.accept(len(data))
                landed.append((segment.xorb, index, oid, offset, len(data)))
                offset += len(data)
                piece.append(data)
                buffered += len(data)
                if buffered >= WRITE_PIECE:
                    await upload.add(b"".join(piece))
                    piece, buffered = [], 0
        await upload.add(b"".join(piece))
        await upload.commit()
    except (MalformedXet, ObjectMismatch) as exc:
        await upload.abort()
        raise XetRefused(f"file {oid} cannot be rebuilt from the upload: {exc}") from None
    except BaseException:
        await upload.abort()
        raise
    return landed


async def _drop_placed_xorbs(
    request: web.Request, access: ModelAccess, files: list[ShardFile]
) -> None:
    """Remove the kept xorbs every chunk of which is now stored in some LFS object."""
    hub = request.app[keys.HUB]
    staged = _staged(request, access)
    for xorb in {s.xorb for f in files for s in f.segments}:
        path = staged / xorb
        if not path.is_file():
            continue
        total = await hub.run_blocking(partial(_count_chunks, path))
        known = await db.count_xet_chunks(hub.db, access.space.id, access.model.id, xorb)
        if known == total:
            path.unlink(missing_ok=True)


def _count_chunks(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in chunk_headers(stream, os.fstat(stream.fileno()).st_size))


async def sweep_abandoned_xorbs(hub: Hub) -> int:
    """Remove kept xorbs that no shard named for a day: uploads given up on."""
    repos = hub.config.repos_dir
    before = hub.clock().timestamp() - ABANDONED_SECONDS
    return await hub.run_blocking(lambda: _remove_older(repos, before))


def _remove_older(repos: Path, before: float) -> int:
    removed = 0
    for path in repos.glob(f"*/*.git/{XET_STAGING_DIR}/*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < before:
                path.unlink()
                removed += 1
    return removed

"""Run a blocking dulwich protocol handler in a thread while aiohttp streams its output.

The request body is read on the event loop before the thread starts (into memory when
small, else into a temporary file): a git thread never waits for a client to
send, so clients that send slowly cannot take every thread. The thread pushes its output
back in chunks of about a mebibyte, waiting for each write to finish, so memory stays
flat however large the pack. A client that reads slower than that (one chunk in
SLOW_READER_SECONDS) does not hold the thread either: the rest of the answer goes to a
temporary file at the thread's own pace, and the loop sends the file as the client reads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

from aiohttp import web

from amphub.http import keys

OUTPUT_CHUNK = 1024 * 1024
SLOW_READER_SECONDS = 5
# A body is written to its spool in pieces of about this size, each on a git thread; a
# spool goes to disk past SPOOL_IN_MEMORY bytes.
SPOOL_PIECE = 256 * 1024
SPOOL_IN_MEMORY = 64 * 1024
T = TypeVar("T")


class BodyTooLarge(Exception):
    """The request body passed the limit set for the route."""


@contextlib.asynccontextmanager
async def body_spooled(
    request: web.Request, limit: int, *, cut: bool = False
) -> AsyncIterator[BinaryIO]:
    """The whole body, read on the loop into memory, or a temporary file in the data dir.

    Past `limit` bytes: BodyTooLarge; with `cut`, reading stops there instead and the
    thread reads a cut body, which its handler refuses as it refuses any body past its
    limit. Bodies a client holds open stay on disk, not in memory: a file has no name
    and goes when it is closed, or with the process.
    """
    if not cut and (request.content_length or 0) > limit:
        raise BodyTooLarge(f"request body larger than {limit} bytes")
    hub = request.app[keys.HUB]
    with tempfile.SpooledTemporaryFile(
        SPOOL_IN_MEMORY, "w+b", dir=str(hub.config.tmp_dir)
    ) as spool:
        received, parts = 0, bytearray()
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if received > limit and not cut:
                raise BodyTooLarge(f"request body larger than {limit} bytes")
            parts += chunk
            if len(parts) >= SPOOL_PIECE or received > limit:
                await hub.run_blocking(partial(spool.write, bytes(parts)))
                parts.clear()
            if received > limit:
                break
        await hub.run_blocking(partial(spool.write, bytes(parts)))
        spool.seek(0)
        yield cast(BinaryIO, spool)


class StreamBridge:
    """The thread's side of a request: `recv` reads the body, `write` sends the answer."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        loop: asyncio.AbstractEventLoop,
        body: BinaryIO,
    ) -> None:
        self.request = request
        self.response = response
        self.loop = loop
        self.body = body
        self._out = bytearray()
        self.started = False
        self.spill: Spill | None = None

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes of the request body; b'' at its end."""
        return self.body.read(size)

    def write(self, data: bytes) -> None:
        """Queue output; it is sent once a chunk is full or at `flush`."""
        self._out += data
        if len(self._out) >= OUTPUT_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Send what is queued (starting the response the first time), or spill it."""
        if not self._out and self.started:
            return
        data = bytes(self._out)
        self._out.clear()
        if self.spill is not None:
            self.spill.append(data)
            return
        sending = asyncio.run_coroutine_threadsafe(self._send(data), self.loop)
        try:
            sending.result(SLOW_READER_SECONDS)
        except TimeoutError:
            # The client reads slowly: the loop sends on, the thread goes its own pace.
            tmp_dir = self.request.app[keys.HUB].config.tmp_dir
            self.spill = Spill(tmp_dir, self.response, sending)

    async def _send(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self.response.prepare(self.request)
        if data:
            await self.response.write(data)


class Spill:
    """The rest of an answer, written to a file by the thread and sent from it by the loop."""

    def __init__(
        self, tmp_dir: Path, response: web.StreamResponse, sending: concurrent.futures.Future[None]
    ) -> None:
        self._file = tempfile.TemporaryFile(dir=tmp_dir)  # noqa: SIM115 - closed by `close`
        self._written = 0
        self._response = response
        self._sending = sending  # the write that was too slow, still under way

    def append(self, data: bytes) -> None:
        """On the thread: add to the answer, without waiting for the client."""
        self._file.write(data)
        self._written += len(data)

    async def send(self, run_blocking: Callable[[Callable[[], bytes]], Awaitable[bytes]]) -> None:
        """On the loop, once the thread is done: send the file as the client reads it."""
        self._file.flush()
        await asyncio.wrap_future(self._sending)
        fd, offset = self._file.fileno(), 0
        while offset < self._written:
            chunk = await run_blocking(partial(os.pread, fd, OUTPUT_CHUNK, offset))
            await self._response.write(chunk)
            offset += len(chunk)

    def close(self) -> None:
        """Drop the file."""
        self._file.close()


async def run_streamed(
    request: web.Request,
    response: web.StreamResponse,
    work: Callable[[StreamBridge], T],
    body: BinaryIO | None = None,
) -> tuple[T, StreamBridge]:
    """Run `work(bridge)` on a git thread, then flush what it left queued."""
    bridge = StreamBridge(request, response, asyncio.get_running_loop(), body or io.BytesIO())

    def run() -> T:
        result = work(bridge)
        bridge.flush()
        return result

    hub = request.app[keys.HUB]
    try:
        result = await hub.run_blocking(run)
        if bridge.spill is not None:
            await bridge.spill.send(hub.run_blocking)
    finally:
        if bridge.spill is not None:
            bridge.spill.close()
    return result, bridge

"""Run a blocking dulwich protocol handler in a thread while aiohttp streams its output.

The request body is read on the event loop before the thread starts (into memory when
small, else into a temporary file): a git thread never waits for a client to
send, so clients that send slowly cannot take every thread. The thread pushes its output
back in chunks of about a mebibyte, waiting for each write to finish: memory stays flat
however large the pack, and a slow reader slows the producer instead of filling RAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from typing import Any, BinaryIO, TypeVar, cast

from aiohttp import web

from amphub.http import keys

OUTPUT_CHUNK = 1024 * 1024
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

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes of the request body; b'' at its end."""
        return self.body.read(size)

    def write(self, data: bytes) -> None:
        """Queue output; it is sent once a chunk is full or at `flush`."""
        self._out += data
        if len(self._out) >= OUTPUT_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Send what is queued, starting the response on the first call."""
        if not self._out and self.started:
            return
        data = bytes(self._out)
        self._out.clear()
        self._call(self._send(data))

    async def _send(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self.response.prepare(self.request)
        if data:
            await self.response.write(data)


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

    return await request.app[keys.HUB].run_blocking(run), bridge

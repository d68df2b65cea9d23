"""Run a blocking dulwich protocol handler in a thread while aiohttp streams its I/O.

The thread pulls the request body chunk by chunk from the event loop and pushes its
output back in chunks of about a mebibyte, waiting for each write to finish: memory stays
flat however large the pack, and a slow client slows the producer instead of filling RAM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from amphub.http import keys

OUTPUT_CHUNK = 1024 * 1024
T = TypeVar("T")


class BodyTooLarge(Exception):
    """The request body passed the limit set for the route."""


class StreamBridge:
    """The thread's side of a request: `recv` reads the body, `write` sends the answer."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        loop: asyncio.AbstractEventLoop,
        max_body: int | None = None,
    ) -> None:
        self.request = request
        self.response = response
        self.loop = loop
        self.max_body = max_body
        self.body_read = 0
        self._in = bytearray()
        self._out = bytearray()
        self.started = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes of the request body; b'' at its end."""
        if not self._in:
            chunk = self._call(self.request.content.readany())
            self.body_read += len(chunk)
            if self.max_body is not None and self.body_read > self.max_body:
                raise BodyTooLarge(f"request body larger than {self.max_body} bytes")
            self._in += chunk
        data = bytes(self._in[:size])
        del self._in[:size]
        return data

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
    max_body: int | None = None,
) -> tuple[T, StreamBridge]:
    """Run `work(bridge)` on a git thread, then flush what it left queued."""
    bridge = StreamBridge(request, response, asyncio.get_running_loop(), max_body)

    def run() -> T:
        result = work(bridge)
        bridge.flush()
        return result

    return await request.app[keys.HUB].run_blocking(run), bridge

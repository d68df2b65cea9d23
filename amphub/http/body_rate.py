"""The minimum body rate: a request body that trickles in is cut, whoever is reading it.

A client sending one byte every few seconds would otherwise hold its handler, and what
the handler holds (a quota reservation, a repository lock), for as long as it likes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from amphub.errors import RequestTimeout
from amphub.http import keys

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _watch(request: web.Request, rate: int, window: int) -> None:
    """Cut the body once a window passes with fewer than `rate * window` new bytes."""
    body = request.content
    seen = body.total_bytes
    while True:
        await asyncio.sleep(window)
        if body.is_eof() or body.exception() is not None:
            return
        if body.total_bytes - seen < rate * window:
            body.set_exception(
                RequestTimeout(
                    f"the request body came in slower than {rate} bytes a second"
                    f" over {window} seconds"
                )
            )
            return
        seen = body.total_bytes


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Watch the body of each request that has one; a cut one ends its connection."""
    config = request.app[keys.HUB].config
    if not request.body_exists or config.min_body_rate == 0:
        return await handler(request)
    watch = asyncio.create_task(_watch(request, config.min_body_rate, config.body_rate_window))
    try:
        response = await handler(request)
    finally:
        watch.cancel()
    if isinstance(request.content.exception(), RequestTimeout):
        response.force_close()
    return response

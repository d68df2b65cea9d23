"""The middleware that counts every request for `/-/metrics`: family, status, time, bytes."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from amphub.http import keys
from amphub.http.errors import Handler, route_family

# nginx's status for a request whose client went away before the answer.
CLIENT_GONE = 499


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request once it is answered (outermost: it sees the status sent)."""
    started = time.monotonic()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects, raised past the error middleware
        _count(request, exc.status, started, 0)
        raise
    except asyncio.CancelledError:
        _count(request, CLIENT_GONE, started, 0)
        raise
    except Exception:
        _count(request, 500, started, 0)
        raise
    if response.prepared:
        # A streamed answer: ended here rather than by aiohttp just after, so that its
        # length is known (ending it twice does nothing).
        try:
            await response.write_eof()
        except ConnectionError:
            _count(request, CLIENT_GONE, started, 0)
            return response  # aiohttp meets the same and closes the connection
        sent = response.body_length
    else:
        sent = response.content_length or 0  # sent by aiohttp after this, as it is
    _count(request, response.status, started, sent)
    return response


def _count(request: web.Request, status: int, started: float, sent: int) -> None:
    request.app[keys.HUB].metrics.request_answered(
        route_family(request), status, time.monotonic() - started, request.content.total_bytes, sent
    )

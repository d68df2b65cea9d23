"""A file stored in git sent as the body of an answer, a chunk at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from amphub.errors import RangeNotSatisfiable
from amphub.http import keys
from amphub.storage.git_objects import BlobReader


def requested_span(request: web.Request, size: int) -> tuple[int, int] | None:
    """The one range [start, stop) of a file that the request asks for; None for all."""
    try:
        wanted = request.http_range
    except ValueError:
        wanted = None
    if wanted is None or (wanted.start is None and wanted.stop is None):
        return None
    start, stop, _ = wanted.indices(size)
    if start >= stop:
        raise RangeNotSatisfiable(
            f"{request.headers['Range']} is outside the file's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, stop


def blob_response(
    request: web.Request, reader: BlobReader, headers: dict[str, str]
) -> web.Response:
    """The blob's bytes, or the range the request asks for as a 206; read off the loop as sent.

    The answer is not prepared yet, so its handler's caller may still add headers.
    """
    span = requested_span(request, reader.size)
    start, stop = span or (0, reader.size)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(stop - start)}
    if span:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{reader.size}"
    status = 206 if span else 200
    if request.method == "HEAD":
        reader.close()
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, headers=headers, body=_chunks(request, reader, start, stop))


async def _chunks(
    request: web.Request, reader: BlobReader, start: int, stop: int
) -> AsyncIterator[bytes]:
    run_blocking = request.app[keys.HUB].run_blocking
    try:
        left = stop - start
        chunk = await run_blocking(lambda: reader.skip(start))
        while left > 0 and chunk:
            yield chunk[:left]
            left -= len(chunk)
            if left > 0:
                chunk = await run_blocking(reader.read)
    finally:
        reader.close()

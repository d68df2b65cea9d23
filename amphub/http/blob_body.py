"""A file stored in git sent as the body of an answer, a chunk at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from amphub.http import keys
from amphub.storage.git_objects import BlobReader


def blob_response(
    request: web.Request,
    reader: BlobReader,
    headers: dict[str, str],
    span: tuple[int, int] | None = None,
) -> web.Response:
    """The blob's bytes, or its bytes [start, stop) as a 206; read off the loop as sent.

    The answer is not prepared yet, so its handler's caller may still add headers.
    """
    start, stop = span or (0, reader.size)
    headers = {**headers, "Content-Length": str(stop - start)}
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

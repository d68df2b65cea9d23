"""An LFS object as the body of an answer: a redirect to the store, sendfile, or streamed."""

from __future__ import annotations

from aiohttp import web

from amphub.http import keys
from amphub.http.blob_body import requested_span

# How long a redirect to the object store stays good.
REDIRECT_SECONDS = 3600


async def object_response(
    request: web.Request,
    oid: str,
    size: int,
    headers: dict[str, str],
    file_response: type[web.FileResponse] = web.FileResponse,
) -> web.StreamResponse:
    """A stored object's bytes, with Range, from wherever the store serves them best.

    Where the store gives URLs and redirection is on, the client is sent there (the bytes do
    not pass through amphub); a local store's file goes out with sendfile; else it streams.
    """
    hub = request.app[keys.HUB]
    store = hub.objects
    if hub.config.s3_redirect:
        url = await store.download_url(oid, REDIRECT_SECONDS, headers.get("Content-Disposition"))
        if url is not None:
            return web.Response(status=302, headers={**headers, "Location": url})
    path = store.file(oid)
    if path is not None:
        return file_response(path, headers=headers)
    span = requested_span(request, size)
    start, stop = span or (0, size)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(stop - start)}
    if span:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    status = 206 if span else 200
    if request.method == "HEAD":
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, headers=headers, body=store.read(oid, start, stop))

"""An LFS object as the body of an answer: a redirect to the store, sendfile, or streamed.

Objects are hashed when they are stored, but a disk may damage one later without its size
changing. So a whole object sent from a local file is hashed while sendfile sends it, and
its last bytes wait for the hash: damaged bytes are never sent whole. The connection is cut
instead (the client sees a short body, not a complete wrong file) and the object is
quarantined, so the next request answers 404 and the next push stores it again. A range
cannot be checked on its own and is sent as stored; scans and `amphub doctor
--verify-objects` check those. An object store checks its own bytes (S3's checksums).
"""

from __future__ import annotations

import asyncio
import logging
import os
from functools import partial
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETag

from amphub.http import keys
from amphub.http.blob_body import requested_span
from amphub.services.hub import Hub
from amphub.services.objects import intact_object
from amphub.storage.objects import hashes_to

log = logging.getLogger("amphub")
# How long a redirect to the object store stays good.
REDIRECT_SECONDS = 3600
# Sent only once the hash matched: enough that a client never holds the whole object.
HELD_BACK = 64 * 1024


async def object_response(
    request: web.Request,
    oid: str,
    size: int,
    headers: dict[str, str],
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
        return ObjectResponse(hub, oid, path, headers)
    span = requested_span(request, size)
    start, stop = span or (0, size)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(stop - start)}
    if span:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    status = 206 if span else 200
    if request.method == "HEAD":
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, headers=headers, body=store.read(oid, start, stop))


class ObjectResponse(web.FileResponse):
    """An LFS object, with Range support, sendfile, and its hash checked as it is sent.

    An ETag in `headers` is kept (the Hub's clients expect the content's sha256) instead
    of the one aiohttp makes of the file's mtime and size.
    """

    def __init__(self, hub: Hub, oid: str, path: Path, headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._hub, self._oid = hub, oid
        self._content_etag = headers.get("ETag")

    @property
    def etag(self) -> ETag | None:
        """The ETag header, parsed."""
        return super().etag

    @etag.setter
    def etag(self, value: Any) -> None:
        if self._content_etag is None:
            web.FileResponse.etag.fset(self, value)  # type: ignore[attr-defined]
        else:
            self.headers["ETag"] = self._content_etag

    async def _sendfile(
        self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        whole = offset == 0 and count == os.fstat(fobj.fileno()).st_size
        if not whole or not self._hub.config.verify_downloads or self.compression:
            return await super()._sendfile(request, fobj, offset, count)
        checked = asyncio.ensure_future(
            self._hub.run_blocking(partial(hashes_to, fobj.fileno(), count, self._oid))
        )
        try:
            writer = await web.StreamResponse.prepare(self, request)
            assert writer is not None
            head = count - min(count, HELD_BACK)
            await self._send(request, writer, fobj, 0, head)
            intact = await checked
        finally:
            checked.cancel()
        if not intact:
            await self._refuse(request, count)
        await self._send(request, writer, fobj, head, count - head)
        await web.StreamResponse.write_eof(self)
        return writer

    async def _send(
        self,
        request: web.BaseRequest,
        writer: AbstractStreamWriter,
        fobj: IO[Any],
        offset: int,
        count: int,
    ) -> None:
        if count == 0:
            return
        if request.transport is None:
            raise ConnectionResetError("Connection lost")
        try:
            await asyncio.get_running_loop().sendfile(request.transport, fobj, offset, count)
        except NotImplementedError:
            await self._sendfile_fallback(writer, fobj, offset, count)

    async def _refuse(self, request: web.BaseRequest, size: int) -> None:
        log.error(
            "LFS object %s does not hash to its oid: download cut, object quarantined",
            self._oid,
        )
        await intact_object(self._hub, self._oid, size)
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError(f"LFS object {self._oid} is damaged on disk")

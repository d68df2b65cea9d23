"""GET and HEAD /{space}/{model}/resolve/{revision}/{path}: files as hf_hub_download needs them.

huggingface_hub keys its cache by these headers: X-Repo-Commit (the commit the revision
named), ETag (a file's git blob id; an LFS file's sha256) and, for LFS files, X-Linked-Etag
and X-Linked-Size (the content's sha256 and size). It resumes a broken download with
Range, so every answer honours one. Files are served here, never redirected.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.helpers import ETag

from amphub.errors import NotFound, RangeNotSatisfiable
from amphub.hf.access import repository, require_repo, run_git
from amphub.hf.errors import EntryNotFound
from amphub.hf.repo import read_file, resolve_revision
from amphub.http import keys
from amphub.http.access import ModelAccess
from amphub.http.headers import DOWNLOAD_HEADERS
from amphub.policy import Action
from amphub.services.objects import stored_object
from amphub.storage.repo_files import BINARY_PROBE, LfsPointer, PathNotFound, parse_pointer


class _StoredObject(web.FileResponse):
    """An LFS object sent with sendfile, under the Hub's ETag (its sha256).

    aiohttp's FileResponse sets an ETag made of the file's mtime and size just before it
    sends the headers; this one keeps the content's.
    """

    def __init__(self, path: Path, headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._content_etag = headers["ETag"]

    @property
    def etag(self) -> ETag | None:
        """The ETag header, parsed."""
        return super().etag

    @etag.setter
    def etag(self, value: object) -> None:
        self.headers["ETag"] = self._content_etag


def _read(path: Path, rev: str, file: str) -> tuple[str, str | None, bytes]:
    """(commit id, blob id, bytes) of a file at a revision; (commit id, None, b"") if absent."""
    commit_id = resolve_revision(path, rev)
    try:
        return commit_id, *read_file(path, commit_id, file)
    except PathNotFound:
        return commit_id, None, b""


def _ranged(request: web.Request, data: bytes, headers: dict[str, str]) -> web.Response:
    """The bytes, or the one range of them that the request asks for."""
    size = len(data)
    try:
        wanted = request.http_range
    except ValueError:
        wanted = None
    if wanted is not None and wanted.start is None and wanted.stop is None:
        return web.Response(body=data, headers=headers)
    start, stop, _ = wanted.indices(size) if wanted else (size, size, 1)
    if start >= stop:
        raise RangeNotSatisfiable(
            f"{request.headers['Range']} is outside the file's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    headers = {**headers, "Content-Range": f"bytes {start}-{stop - 1}/{size}"}
    return web.Response(status=206, body=data[start:stop], headers=headers)


async def _stored(request: web.Request, access: ModelAccess, pointer: LfsPointer) -> Path:
    """Where the content of an LFS file of this model is stored."""
    hub = request.app[keys.HUB]
    stored = await stored_object(hub, access.space.id, access.model.id, pointer.oid)
    if stored is None:
        raise NotFound(f"the LFS content {pointer.oid} is not stored on this server")
    return stored


async def get_resolve(request: web.Request) -> web.StreamResponse:
    """A file's content at a revision: LFS content where the file is a pointer."""
    access = await require_repo(request, Action.READ_FILES)
    path = repository(request, access)
    rev, file = request.match_info["rev"], request.match_info["path"]
    commit_id, blob_id, data = await run_git(request, lambda: _read(path, rev, file))
    if blob_id is None:
        # With the commit, the client remembers that the file is absent from it.
        raise EntryNotFound(f"no {file} in {rev}", headers={"X-Repo-Commit": commit_id})
    # A model's file is the uploader's content: never run as a page of this origin.
    headers = {"X-Repo-Commit": commit_id, "Accept-Ranges": "bytes", **DOWNLOAD_HEADERS}
    pointer = parse_pointer(data)
    if pointer is None:
        binary = b"\0" in data[:BINARY_PROBE]
        kind = "application/octet-stream" if binary else "text/plain; charset=utf-8"
        return _ranged(request, data, {**headers, "ETag": f'"{blob_id}"', "Content-Type": kind})
    etag = f'"{pointer.oid}"'
    headers.update(
        {
            "ETag": etag,
            "X-Linked-Etag": etag,
            "X-Linked-Size": str(pointer.size),
            "Content-Type": "application/octet-stream",
        }
    )
    return _StoredObject(await _stored(request, access, pointer), headers)

"""GET and HEAD /{space}/{model}/resolve/{revision}/{path}: files as hf_hub_download needs them.

huggingface_hub keys its cache by these headers: X-Repo-Commit (the commit the revision
named), ETag (a file's git blob id; an LFS file's sha256) and, for LFS files, X-Linked-Etag
and X-Linked-Size (the content's sha256 and size). It resumes a broken download with
Range, so every answer honours one. LFS content comes from the object store by redirect
where it gives URLs (the clients follow it, as they follow the Hub's to its CDN).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from amphub.errors import NotFound
from amphub.hf.access import repository, require_repo, revision_resolver, run_git
from amphub.hf.errors import EntryNotFound
from amphub.hf.repo import open_file, shown_commit
from amphub.http import keys
from amphub.http.access import ModelAccess
from amphub.http.blob_body import blob_response
from amphub.http.headers import DOWNLOAD_HEADERS
from amphub.http.object_body import object_response
from amphub.policy import Action
from amphub.services.objects import stored_object
from amphub.storage.git_objects import BlobReader
from amphub.storage.repo_files import (
    BINARY_PROBE,
    LFS_POINTER_MAX,
    LfsPointer,
    PathNotFound,
    parse_pointer,
)


def _open(
    resolve: Callable[[Path, str], str], path: Path, rev: str, file: str
) -> tuple[str, str | None, BlobReader | None]:
    """(commit id, blob id, reader) of a file at a revision; (commit id, None, None) if absent."""
    commit_id = resolve(path, rev)
    try:
        return shown_commit(rev, commit_id), *open_file(path, commit_id, file)
    except PathNotFound:
        return shown_commit(rev, commit_id), None, None


async def _stored(request: web.Request, access: ModelAccess, pointer: LfsPointer) -> int:
    """The size of the content of an LFS file of this model, which is stored."""
    hub = request.app[keys.HUB]
    size = await stored_object(hub, access.space.id, access.model.id, pointer.oid)
    if size is None:
        raise NotFound(f"the LFS content {pointer.oid} is not stored on this server")
    return size


async def get_resolve(request: web.Request) -> web.StreamResponse:
    """A file's content at a revision: LFS content where the file is a pointer."""
    access = await require_repo(request, Action.READ_FILES)
    path = repository(request, access)
    rev, file = request.match_info["rev"], request.match_info["path"]
    resolve = revision_resolver(request)
    commit_id, blob_id, reader = await run_git(request, lambda: _open(resolve, path, rev, file))
    if blob_id is None or reader is None:
        # With the commit, the client remembers that the file is absent from it.
        raise EntryNotFound(f"no {file} in {rev}", headers={"X-Repo-Commit": commit_id})
    # A model's file is the uploader's content: never run as a page of this origin.
    headers = {"X-Repo-Commit": commit_id, "Accept-Ranges": "bytes", **DOWNLOAD_HEADERS}
    try:
        head = await run_git(request, lambda: reader.peek(BINARY_PROBE))
        pointer = parse_pointer(head) if reader.size <= LFS_POINTER_MAX else None
        if pointer is None:
            binary = b"\0" in head
            kind = "application/octet-stream" if binary else "text/plain; charset=utf-8"
            headers.update({"ETag": f'"{blob_id}"', "Content-Type": kind})
            return blob_response(request, reader, headers)
    except BaseException:
        reader.close()
        raise
    reader.close()
    etag = f'"{pointer.oid}"'
    headers.update(
        {
            "ETag": etag,
            "X-Linked-Etag": etag,
            "X-Linked-Size": str(pointer.size),
            "Content-Type": "application/octet-stream",
        }
    )
    size = await _stored(request, access, pointer)
    return await object_response(request, pointer.oid, size, headers)

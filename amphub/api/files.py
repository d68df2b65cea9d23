"""A model's refs, folders and files at any branch, tag or commit."""

from __future__ import annotations

import json
import re

from aiohttp import web

from amphub import db, keys
from amphub.access import require_model
from amphub.errors import ApiError, NotFound
from amphub.git.bridge import run_blocking
from amphub.git.files import (
    BINARY_PROBE,
    PathNotFound,
    RevisionNotFound,
    list_refs,
    list_tree,
    parse_pointer,
    read_blob,
)
from amphub.git.repos import repo_path
from amphub.policy import Action
from amphub.scan.findings import SCANNER_VERSION

RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(ApiError):
    """The Range asks for bytes the file does not have."""

    status = 416
    code = "range_not_satisfiable"


async def _repo(request: web.Request):
    access = await require_model(
        request, request.match_info["space"], request.match_info["model"], Action.READ_FILES
    )
    return access, repo_path(request.app[keys.CONFIG], access.space.id, access.model.id)


async def _blocking(request: web.Request, work):
    try:
        return await run_blocking(request.app, work)
    except (RevisionNotFound, PathNotFound) as exc:
        raise NotFound(str(exc)) from None


async def get_refs(request: web.Request) -> web.Response:
    """Branches and tags."""
    _, path = await _repo(request)
    return web.json_response(await _blocking(request, lambda: list_refs(path)))


async def get_tree(request: web.Request) -> web.Response:
    """The entries of a folder; LFS files with their real size."""
    _, path = await _repo(request)
    rev, folder = request.match_info["rev"], request.match_info["path"].strip("/")
    entries = await _blocking(request, lambda: list_tree(path, rev, folder))
    ids = [entry.content_id for entry in entries if entry.content_id]
    verdicts = await db.scan_verdicts(request.app[keys.DB], ids, SCANNER_VERSION)
    answer = []
    for entry in entries:
        item = {"path": entry.path, "type": entry.type, "size": entry.size}
        if entry.lfs:
            item["lfs"] = {"oid": entry.lfs.oid, "size": entry.lfs.size}
        if entry.binary is not None:
            item["binary"] = entry.binary
        if entry.content_id in verdicts:
            item["scan"] = json.loads(verdicts[entry.content_id])
        answer.append(item)
    return web.json_response({"entries": answer})


def _ranged(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """The bytes, or the single range of them the request asks for."""
    header = request.headers.get("Range")
    match = RANGE.fullmatch(header.strip()) if header else None
    ranges = {"Accept-Ranges": "bytes"}
    if not match or match.groups() == ("", ""):
        return web.Response(body=data, content_type=content_type, headers=ranges)
    first, last = match.groups()
    size = len(data)
    start = int(first) if first else max(size - int(last), 0)
    end = min(int(last), size - 1) if first and last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"{header} is outside the file's {size} bytes")
    return web.Response(
        status=206,
        body=data[start : end + 1],
        content_type=content_type,
        headers={"Content-Range": f"bytes {start}-{end}/{size}", **ranges},
    )


async def get_blob(request: web.Request) -> web.StreamResponse:
    """A file's content: LFS content where the file is a pointer, with Range either way."""
    access, path = await _repo(request)
    rev, file = request.match_info["rev"], request.match_info["path"]
    data = await _blocking(request, lambda: read_blob(path, rev, file))
    pointer = parse_pointer(data)
    if pointer is None:
        kind = "application/octet-stream" if b"\0" in data[:BINARY_PROBE] else "text/plain"
        return _ranged(request, data, kind)
    space_id, model_id = access.space.id, access.model.id
    linked = await db.linked_object_sizes(request.app[keys.DB], space_id, model_id, [pointer.oid])
    stored = request.app[keys.LFS_STORE].path(pointer.oid)
    if pointer.oid not in linked or not stored.is_file():
        raise NotFound(f"the LFS content of {file} is not stored on this server")
    return web.FileResponse(stored, headers={"Content-Type": "application/octet-stream"})


def add_routes(app: web.Application) -> None:
    """The file routes."""
    # Ids and revisions exclude '/', so they carry no path separator; the file path may,
    # and is only ever looked up inside the revision's tree, never on disk.
    model = "/api/v1/models/{space:[a-z0-9-]+}/{model:[A-Za-z0-9._-]+}"
    rev = "{rev:[A-Za-z0-9._-]+}"
    app.router.add_get(model + "/refs", get_refs)
    app.router.add_get(model + f"/tree/{rev}" + "{path:(/.*)?}", get_tree)
    app.router.add_get(model + f"/blob/{rev}/" + "{path:.+}", get_blob)

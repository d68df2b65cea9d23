"""A model's refs, folders and files at any branch, tag or commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from amphub import db
from amphub.clock import rfc3339
from amphub.errors import BadRequest, NotFound
from amphub.http import keys
from amphub.http.access import ModelAccess, require_model
from amphub.http.blob_body import blob_response
from amphub.http.headers import DOWNLOAD_HEADERS
from amphub.http.object_body import object_response
from amphub.policy import Action
from amphub.scan.findings import SCANNER_VERSION, worst
from amphub.services.mirror import check_revision_servable
from amphub.services.objects import stored_object
from amphub.services.scans import RefScan, ref_scan, with_history
from amphub.storage.commit_views import FileChange, commit_changes
from amphub.storage.repo_files import (
    BINARY_PROBE,
    LFS_POINTER_MAX,
    CommitInfo,
    Entry,
    PathNotFound,
    RevisionNotFound,
    file_entry,
    file_history,
    list_commits,
    list_refs,
    list_tree,
    open_blob,
    parse_pointer,
    resolve,
)

T = TypeVar("T")
COMMITS_PER_PAGE = 30
MAX_COMMITS_PER_PAGE = 100


async def model_repo(request: web.Request) -> tuple[ModelAccess, Path]:
    """The model of the path, if the caller may read its files, and its repository."""
    access = await require_model(
        request, request.match_info["space"], request.match_info["model"], Action.READ_FILES
    )
    return access, request.app[keys.HUB].repos.path(access.space.id, access.model.id)


async def _blocking(request: web.Request, work: Callable[[], T]) -> T:
    try:
        return await request.app[keys.HUB].run_blocking(work)
    except (RevisionNotFound, PathNotFound) as exc:
        raise NotFound(str(exc)) from None


async def get_refs(request: web.Request) -> web.Response:
    """Branches and tags."""
    return web.json_response(await refs_json(request))


async def refs_json(request: web.Request) -> dict[str, list[dict[str, str]]]:
    """The branches and tags of the model the request names, as `get_refs` lists them."""
    _, path = await model_repo(request)
    return await _blocking(request, lambda: list_refs(path))


async def rev_scan(request: web.Request, path: Path, rev: str) -> RefScan:
    """The scan verdict of a branch, tag or commit of the request's model."""
    commit = await _blocking(request, lambda: resolve(path, rev))
    space_id, model_id = request.match_info["space"], request.match_info["model"]
    return await ref_scan(request.app[keys.HUB], space_id, model_id, rev, commit)


async def _entries_json(
    request: web.Request, entries: list[Entry], scan: RefScan
) -> list[dict[str, Any]]:
    """Entries as the API shows them, each file with its last scan verdict.

    Where a scan of this very commit exists, a file also carries the secrets that scan
    found in its earlier versions, and a folder the count of each status found inside.
    """
    ids = [entry.content_id for entry in entries if entry.content_id]
    verdicts = await db.scan_verdicts(request.app[keys.HUB].db, ids, SCANNER_VERSION)
    this_commit = scan.state == "scanned"
    answer = []
    for entry in entries:
        item: dict[str, Any] = {"path": entry.path, "type": entry.type, "size": entry.size}
        if entry.lfs:
            item["lfs"] = {"oid": entry.lfs.oid, "size": entry.lfs.size}
        if entry.binary is not None:
            item["binary"] = entry.binary
        verdict = json.loads(verdicts[entry.content_id]) if entry.content_id in verdicts else None
        if this_commit and entry.type == "file":
            verdict = with_history(verdict, scan.files.get(entry.path))
        elif this_commit:
            counts = scan.folder(entry.path)
            verdict = {"status": worst(["safe", *counts]), "counts": counts}  # type: ignore[list-item]
        if verdict is not None:
            item["scan"] = verdict
        answer.append(item)
    return answer


async def tree_entries(
    request: web.Request,
    path: Path,
    rev: str,
    folder: str,
    start: int = 0,
    count: int | None = None,
    scan: RefScan | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many entries, a page of them) of a folder as the API shows them."""
    total, entries = await _blocking(request, lambda: list_tree(path, rev, folder, start, count))
    scan = scan or await rev_scan(request, path, rev)
    return total, await _entries_json(request, entries, scan)


async def file_json(
    request: web.Request, path: Path, rev: str, file: str, scan: RefScan | None = None
) -> dict[str, Any]:
    """One file as its folder's listing shows it."""
    entry = await _blocking(request, lambda: file_entry(path, rev, file))
    scan = scan or await rev_scan(request, path, rev)
    return (await _entries_json(request, [entry], scan))[0]


async def get_tree(request: web.Request) -> web.Response:
    """The entries of a folder; LFS files with their real size."""
    _, path = await model_repo(request)
    rev, folder = request.match_info["rev"], request.match_info["path"].strip("/")
    _, entries = await tree_entries(request, path, rev, folder)
    return web.json_response({"entries": entries})


async def file_data(request: web.Request, path: Path, rev: str, file: str) -> bytes:
    """A small file's bytes as stored in git: an LFS file gives its pointer."""

    def read() -> bytes:
        reader = open_blob(path, rev, file)
        try:
            return reader.skip(0) + b"".join(iter(reader.read, b""))
        finally:
            reader.close()

    return await _blocking(request, read)


async def get_blob(request: web.Request, disposition: str | None = None) -> web.StreamResponse:
    """A file's content: LFS content where the file is a pointer, with Range either way.

    `disposition` (a Content-Disposition) goes on the answer, and into the store's URL
    where LFS content is redirected there, so that a browser saves it under its name.
    """
    access, path = await model_repo(request)
    rev, file = request.match_info["rev"], request.match_info["path"]
    hub = request.app[keys.HUB]
    await check_revision_servable(hub, access.model, rev, access.who.name or "")
    reader = await _blocking(request, lambda: open_blob(path, rev, file))
    try:
        head = await hub.run_blocking(lambda: reader.peek(BINARY_PROBE))
        pointer = parse_pointer(head) if reader.size <= LFS_POINTER_MAX else None
        if pointer is None:
            kind = "application/octet-stream" if b"\0" in head else "text/plain"
            return blob_response(request, reader, {"Content-Type": kind, **DOWNLOAD_HEADERS})
    except BaseException:
        reader.close()
        raise
    reader.close()
    size = await stored_object(hub, access.space.id, access.model.id, pointer.oid)
    if size is None:
        raise NotFound(f"the LFS content of {file} is not stored on this server")
    headers = {"Content-Type": "application/octet-stream", **DOWNLOAD_HEADERS}
    if disposition:
        headers["Content-Disposition"] = disposition
    return await object_response(request, pointer.oid, size, headers)


def _time(seconds: int) -> str:
    return rfc3339(datetime.fromtimestamp(seconds, UTC))


def commit_json(commit: CommitInfo) -> dict[str, Any]:
    """A commit as the API shows it."""
    return {
        "id": commit.id,
        "parents": list(commit.parents),
        "author": commit.author,
        "authored_at": _time(commit.authored_at),
        "committer": commit.committer,
        "committed_at": _time(commit.committed_at),
        "message": commit.message,
    }


def _commit_page(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", str(COMMITS_PER_PAGE)))
    except ValueError:
        raise BadRequest("page and per_page must be whole numbers") from None
    if page < 1 or not 1 <= per_page <= MAX_COMMITS_PER_PAGE:
        raise BadRequest(f"page starts at 1; per_page is 1 to {MAX_COMMITS_PER_PAGE}")
    return page, per_page


async def get_commits(request: web.Request) -> web.Response:
    """The history of a branch, tag or commit, newest first, a page at a time."""
    return web.json_response(await commits_json(request))


async def commits_json(request: web.Request) -> dict[str, Any]:
    """One page of history (of one file with `?path=`) and the next page's number."""
    _, path = await model_repo(request)
    page, per_page = _commit_page(request)
    rev, file = request.match_info["rev"], request.query.get("path", "").strip("/")
    skip = (page - 1) * per_page
    # One commit more than the page tells whether there is a next page.
    if file:
        commits = await _blocking(
            request, lambda: file_history(path, rev, file, skip, per_page + 1)
        )
    else:
        commits = await _blocking(request, lambda: list_commits(path, rev, skip, per_page + 1))
    return {
        "commits": [commit_json(commit) for commit in commits[:per_page]],
        "next_page": page + 1 if len(commits) > per_page else None,
    }


def _change_json(change: FileChange) -> dict[str, Any]:
    answer: dict[str, Any] = {"path": change.path, "kind": change.kind, "binary": change.binary}
    if change.old_path is not None:
        answer["old_path"] = change.old_path
    for side, pointer in (("old_lfs", change.old_lfs), ("new_lfs", change.new_lfs)):
        if pointer is not None:
            answer[side] = {"oid": pointer.oid, "size": pointer.size}
    if change.lines is not None:
        answer["diff"] = change.lines
    return answer


async def get_commit(request: web.Request) -> web.Response:
    """One commit and what it changed against its first parent."""
    return web.json_response(await commit_changes_json(request))


async def commit_changes_json(request: web.Request) -> dict[str, Any]:
    """A commit, its changed files and how many more it changed than are listed.

    Each file has its text diff, or its LFS pointers before and after, or is named only.
    """
    _, path = await model_repo(request)
    rev = request.match_info["rev"]
    found = await _blocking(request, lambda: commit_changes(path, rev))
    return {
        "commit": commit_json(found.commit),
        "files": [_change_json(change) for change in found.files],
        "more": found.more,
    }


def add_routes(app: web.Application) -> None:
    """The file routes."""
    # Ids and revisions exclude '/', so they carry no path separator; the file path may,
    # and is only ever looked up inside the revision's tree, never on disk.
    model = "/api/v1/models/{space:[a-z0-9-]+}/{model:[A-Za-z0-9._-]+}"
    rev = "{rev:[A-Za-z0-9._-]+}"
    app.router.add_get(model + "/refs", get_refs)
    app.router.add_get(model + f"/commits/{rev}", get_commits)
    app.router.add_get(model + f"/commit/{rev}", get_commit)
    app.router.add_get(model + f"/tree/{rev}" + "{path:(/.*)?}", get_tree)
    app.router.add_get(model + f"/blob/{rev}/" + "{path:.+}", get_blob)

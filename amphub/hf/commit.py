"""POST /api/models/{repo}/commit/{revision}: the Hub's NDJSON commit, as a git commit.

The body is a `header` line (summary, description, parentCommit), then one line per
operation: `file` (base64 content), `lfsFile` (an object already uploaded through the LFS
batch API and linked to the model), `deletedFile`, `deletedFolder`. The commit then
runs what every push runs: the quota check, the push record, the card's re-indexing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from amphub import db
from amphub.errors import BadRequest, NotOffered, PayloadTooLarge, QuotaExceeded
from amphub.hf.access import repository, require_repo, run_git
from amphub.hf.paging import flag
from amphub.hf.treewrite import Addition, CommitPlan, Deletion, write_commit
from amphub.http import keys
from amphub.http.access import ModelAccess
from amphub.http.body import parse_json
from amphub.http.urls import base_url
from amphub.policy import Action
from amphub.services.push import push_target
from amphub.services.quota import push_room
from amphub.storage.objects import InvalidOid, check_oid
from amphub.storage.repo_files import LfsPointer

# Regular files come inline (large ones go to LFS, as the preupload answer says), so a
# commit body is bounded; 256 MiB of base64 is 192 MiB of files.
MAX_COMMIT_BODY = 256 * 1024 * 1024
MAX_PATH_BYTES = 4096
COMMIT_PREFIX = re.compile(r"[0-9a-f]{7,40}")
NO_PULL_REQUESTS = (
    "amphub has no pull requests: commit to a branch instead (create_branch, then"
    " create_commit with revision=<branch>)"
)


def check_path(path: Any) -> str:
    """A file path in the repository: relative, no empty, `.`, `..` or `.git` parts."""
    if not isinstance(path, str) or not path:
        raise BadRequest("every operation needs a path")
    parts = path.split("/")
    if (
        any(part in ("", ".", "..") or part.lower() == ".git" for part in parts)
        or "\0" in path
        or len(path.encode()) > MAX_PATH_BYTES
    ):
        raise BadRequest(f"invalid path {path[:200]!r}: a relative path without '.', '..' or .git")
    return path


async def _lines(request: web.Request) -> AsyncIterator[bytes]:
    """The body's lines as they arrive, within MAX_COMMIT_BODY."""
    buffer, searched, total = bytearray(), 0, 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > MAX_COMMIT_BODY:
            raise PayloadTooLarge(f"a commit body may be at most {MAX_COMMIT_BODY} bytes")
        buffer += chunk
        while (end := buffer.find(b"\n", searched)) >= 0:
            yield bytes(buffer[:end])
            del buffer[: end + 1]
            searched = 0
        searched = len(buffer)
    if buffer.strip():
        yield bytes(buffer)


def _file(value: dict[str, Any]) -> Addition:
    path = check_path(value.get("path"))
    content = value.get("content")
    if not isinstance(content, str):
        raise BadRequest(f"{path}: a file line needs its content")
    if value.get("encoding", "base64") != "base64":
        return Addition(path, content.encode())
    try:
        return Addition(path, base64.b64decode(content, validate=True))
    except binascii.Error:
        raise BadRequest(f"{path}: the content is not base64") from None


def _lfs_file(value: dict[str, Any]) -> Addition:
    path = check_path(value.get("path"))
    if value.get("algo", "sha256") != "sha256":
        raise BadRequest(f"{path}: LFS objects are known by sha256 only")
    try:
        oid = check_oid(str(value.get("oid")))
    except InvalidOid as exc:
        raise BadRequest(f"{path}: {exc}") from None
    size = value.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise BadRequest(f"{path}: size must be a whole number")
    return Addition(path, lfs=LfsPointer(oid, -1 if size is None else size))


def _operation(key: Any, value: dict[str, Any]) -> Addition | Deletion:
    if key == "file":
        return _file(value)
    if key == "lfsFile":
        return _lfs_file(value)
    if key in ("deletedFile", "deletedFolder"):
        path = value.get("path")
        path = path.rstrip("/") if isinstance(path, str) else path
        return Deletion(check_path(path), key == "deletedFolder")
    raise BadRequest(
        f"unknown commit line {key!r}: amphub takes header, file, lfsFile, deletedFile"
        " and deletedFolder"
    )


def _parent(header: dict[str, Any]) -> str | None:
    """The commit the client based its commit on: a commit id, or its first 7 or more digits."""
    parent = header.get("parentCommit")
    if parent is not None and not (isinstance(parent, str) and COMMIT_PREFIX.fullmatch(parent)):
        raise BadRequest("parentCommit must be a commit id (7 to 40 hex digits)")
    return parent


async def read_plan(request: web.Request) -> CommitPlan:
    """The commit the NDJSON body asks for; the header must come first."""
    plan = None
    async for line in _lines(request):
        if not line.strip():
            continue
        item = parse_json(line, "each line of a commit must be a JSON object")
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, dict):
            raise BadRequest("each line of a commit needs a key and a value object")
        if plan is None:
            if item.get("key") != "header" or not isinstance(value.get("summary"), str):
                raise BadRequest("a commit starts with a header line that has a summary")
            plan = CommitPlan(value["summary"], str(value.get("description") or ""), _parent(value))
        else:
            plan.operations.append(_operation(item.get("key"), value))
    if plan is None or not plan.summary.strip():
        raise BadRequest("a commit needs a header line with a summary")
    return plan


async def _link_lfs(request: web.Request, access: ModelAccess, plan: CommitPlan) -> None:
    """Check that every LFS object is stored and linked to the model; fill in sizes."""
    wanted = [op.lfs.oid for op in plan.operations if isinstance(op, Addition) and op.lfs]
    linked = await db.linked_object_sizes(
        request.app[keys.HUB].db, access.space.id, access.model.id, wanted
    )
    store = request.app[keys.HUB].objects
    for i, op in enumerate(plan.operations):
        if not isinstance(op, Addition) or not op.lfs:
            continue
        oid, size = op.lfs.oid, op.lfs.size
        if oid not in linked or await store.size(oid) is None:
            raise BadRequest(
                f"{op.path}: LFS object {oid} was not uploaded to this model; upload it"
                " through the LFS batch API (…/info/lfs/objects/batch) first"
            )
        if size not in (-1, linked[oid]):
            raise BadRequest(f"{op.path}: LFS object {oid} has {linked[oid]} bytes, not {size}")
        plan.operations[i] = Addition(op.path, lfs=LfsPointer(oid, linked[oid]))


async def post_commit(request: web.Request) -> web.Response:
    """Make a commit on a branch from the Hub's NDJSON operations."""
    access = await require_repo(request, Action.WRITE_FILES)
    if flag(request, "create_pr"):
        raise NotOffered(NO_PULL_REQUESTS)
    path = repository(request, access)
    plan = await read_plan(request)
    await _link_lfs(request, access, plan)
    hub = request.app[keys.HUB]
    room, refusal = await push_room(hub, access.space)
    # LFS content passed the quota when it was uploaded; deleting always fits.
    inline = sum(len(op.data) for op in plan.operations if isinstance(op, Addition))
    if inline > max(room, 0):
        raise QuotaExceeded(refusal)
    user = request[keys.ACTOR].name or ""
    target = push_target(hub, user, access.space.id, access.model.id)
    author = f"{target.user} <{target.user}@amphub>".encode()
    when = int(hub.clock().timestamp())
    lock = hub.repos.lock(path)
    rev = request.match_info["rev"]
    async with hub.locks.hold(("repository", access.space.id, access.model.id)):
        update = await run_git(
            request, target.moving(lambda: write_commit(path, lock, rev, plan, author, when))
        )
    commit_id = update.new.decode()
    url = f"{base_url(request)}/{access.space.id}/{access.model.id}/commit/{commit_id}"
    return web.json_response(
        {"commitUrl": url, "commitOid": commit_id, "success": True, "pullRequestUrl": None}
    )

"""Uploading as huggingface_hub does: create a repo, preupload, branches, tags, README checks.

The commit itself is in amphub.hf.commit; large files travel through amphub's LFS batch
API, which the client finds at `{repo}.git/info/lfs`.
"""

from __future__ import annotations

import base64
import binascii
from io import BytesIO
from pathlib import Path
from typing import Any

from aiohttp import web
from dulwich.ignore import IgnoreFilter, read_ignore_patterns

from amphub.cards import parse_card
from amphub.errors import BadRequest, Conflict, NotOffered, PayloadTooLarge, QuotaExceeded
from amphub.hf.access import repository, require_repo, run_git
from amphub.hf.commit import NO_PULL_REQUESTS
from amphub.hf.paging import flag
from amphub.hf.repo import HubEntry, default_branch, path_entries, read_optional, resolve_revision
from amphub.hf.treewrite import create_ref, delete_ref, lfs_routing
from amphub.http import keys
from amphub.http.access import ModelAccess, actor, require_space
from amphub.http.body import BodyTooLong, field, json_object, parse_json, read_body
from amphub.http.urls import base_url
from amphub.policy import Action
from amphub.policy.names import check_display_name, check_model_id
from amphub.services.models import create_model
from amphub.services.push import push_target
from amphub.services.quota import quota_message, room_left

# Larger files, and files with a NUL byte in their first 512 bytes, go to LFS; so do the
# paths .gitattributes routes there. This is the Hub's own limit for regular files.
REGULAR_FILE_LIMIT = 10 * 1024 * 1024
MAX_README = 16 * 1024 * 1024


async def post_create_repo(request: web.Request) -> web.Response:
    """Create a model in a space: the repo id is `space/model`; 409 when it exists."""
    body = await json_object(request)
    if body.get("type") not in (None, "model"):
        raise BadRequest("amphub hosts models only: create_repo with repo_type='model'")
    space_id = field(body, "organization", str, None)
    if not space_id:
        raise BadRequest("give the repo id as space/model: every amphub model lives in a space")
    space = await require_space(request, space_id, Action.CREATE_MODEL)
    model_id = check_model_id(field(body, "name", str))
    name = check_display_name(model_id)
    private = field(body, "private", bool, None)
    visibility = field(body, "visibility", str, None) or (
        "public" if private is False else "private"
    )
    if visibility not in ("private", "public"):
        raise BadRequest("visibility must be private or public")
    owner = actor(request).name or ""
    repo_id = f"{space.id}/{model_id}"
    url = f"{base_url(request)}/{repo_id}"
    try:
        await create_model(request.app[keys.HUB], space.id, model_id, name, visibility, owner)
    except Conflict as exc:
        # The Hub's 409 names the repository too: create_repo(exist_ok=True) returns it.
        message = f"{exc}; it is at {url}"
        headers = {"X-Error-Message": message}
        return web.json_response({"error": message, "url": url}, status=409, headers=headers)
    return web.json_response({"url": url, "name": repo_id, "id": repo_id})


def _upload_mode(routed: bool, item: dict[str, Any]) -> str:
    """LFS for what .gitattributes routes there, large files and binary ones; else inline."""
    size = item.get("size")
    if not isinstance(size, int):
        size = 0
    return "lfs" if routed or size > REGULAR_FILE_LIMIT or b"\0" in _sample(item) else "regular"


def _sample(item: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(item.get("sample", "")), validate=True)
    except binascii.Error:
        return b""


def _preupload_read(
    path: Path, rev: str, paths: list[str]
) -> tuple[bytes, bytes, dict[str, HubEntry]]:
    """(.gitattributes, .gitignore, the files already at these paths) of a revision."""
    commit_id = resolve_revision(path, rev)
    entries = {e.path: e for e in path_entries(path, commit_id, paths) if e.type == "file"}
    attributes = read_optional(path, commit_id, ".gitattributes")
    return attributes, read_optional(path, commit_id, ".gitignore"), entries


async def post_preupload(request: web.Request) -> web.Response:
    """For each file to upload: LFS or inline in the commit, ignored or not, and its oid now."""
    access = await require_repo(request, Action.WRITE_FILES)
    if flag(request, "create_pr"):
        raise NotOffered(NO_PULL_REQUESTS)
    path, rev = repository(request, access), request.match_info["rev"]
    body = await json_object(request)
    files = field(body, "files", list)
    if not all(isinstance(item, dict) and isinstance(item.get("path"), str) for item in files):
        raise BadRequest("each file needs a path, a size and a sample")
    paths = [item["path"] for item in files]
    attributes, ignore, entries = await run_git(request, lambda: _preupload_read(path, rev, paths))
    # The client sends the .gitignore it is committing, if any; else the revision's counts.
    ignore = field(body, "gitIgnore", str, "").encode() or ignore
    ignored = IgnoreFilter(read_ignore_patterns(BytesIO(ignore)))
    routed = lfs_routing(attributes)
    answer = []
    for item in files:
        existing = entries.get(item["path"])
        answer.append(
            {
                "path": item["path"],
                "uploadMode": _upload_mode(routed(item["path"]), item),
                "shouldIgnore": bool(ignored.is_ignored(item["path"])),
                "oid": (existing.lfs.oid if existing.lfs else existing.oid) if existing else None,
            }
        )
    await _check_room(request, access, files, answer, entries)
    return web.json_response({"files": answer})


async def _check_room(
    request: web.Request,
    access: ModelAccess,
    files: list[dict[str, Any]],
    answer: list[dict[str, Any]],
    entries: dict[str, HubEntry],
) -> None:
    """Refuse large files that cannot fit, before any byte is sent.

    The upload itself checks the quota exactly; this early check is what the client shows
    clearly whether it uploads through LFS or Xet (whose storage errors it shows only as
    a status). A file is counted unless its path holds a file of the same size already,
    so that re-uploading an unchanged folder never looks like new bytes.
    """
    asked = 0
    for item, mode in zip(files, answer, strict=True):
        size = item.get("size")
        if mode["uploadMode"] != "lfs" or not isinstance(size, int) or size <= 0:
            continue
        existing = entries.get(item["path"])
        if existing is None or existing.size != size:
            asked += size
    if asked and asked > (left := await room_left(request.app[keys.HUB], access.space)):
        space = access.space
        raise QuotaExceeded(quota_message(space.id, space.quota - left, space.quota, asked))


async def _new_ref(
    request: web.Request, access: ModelAccess, ref: bytes, start: str, message: str
) -> web.Response:
    """Create a branch or tag at a revision, then run the post-push steps."""
    path = repository(request, access)
    target = await run_git(request, lambda: resolve_revision(path, start))
    user = request[keys.ACTOR].name or ""
    pushed = push_target(request.app[keys.HUB], user, access.space.id, access.model.id)
    tagger = f"{pushed.user} <{pushed.user}@amphub>".encode()
    when = int(request.app[keys.HUB].clock().timestamp())
    lock = request.app[keys.HUB].repos.lock(path)
    async with request.app[keys.HUB].locks.hold(("repository", access.space.id, access.model.id)):
        await run_git(
            request,
            pushed.moving(
                lambda: create_ref(path, lock, ref, target.encode(), tagger, when, message)
            ),
        )
    return web.json_response({"ref": ref.decode(), "targetCommit": target})


async def post_branch(request: web.Request) -> web.Response:
    """Create a branch at `startingPoint` (the default branch when not given); 409 if it exists."""
    access = await require_repo(request, Action.WRITE_FILES)
    start = field(await json_object(request), "startingPoint", str, default_branch())
    ref = b"refs/heads/" + request.match_info["branch"].encode()
    return await _new_ref(request, access, ref, start, "")


async def post_tag(request: web.Request) -> web.Response:
    """Tag a revision; with a message the tag is an annotated one; 409 if it exists."""
    access = await require_repo(request, Action.WRITE_FILES)
    body = await json_object(request)
    ref = b"refs/tags/" + field(body, "tag", str).encode()
    return await _new_ref(
        request, access, ref, request.match_info["rev"], field(body, "message", str, "")
    )


async def delete_branch(request: web.Request) -> web.Response:
    """Delete a branch, as a push that deletes it would."""
    return await _delete_ref(request, b"refs/heads/", "branch", request.match_info["branch"])


async def delete_tag(request: web.Request) -> web.Response:
    """Delete a tag, as a push that deletes it would."""
    return await _delete_ref(request, b"refs/tags/", "tag", request.match_info["rev"])


async def _delete_ref(request: web.Request, prefix: bytes, kind: str, name: str) -> web.Response:
    access = await require_repo(request, Action.WRITE_FILES)
    path = repository(request, access)
    user = request[keys.ACTOR].name or ""
    pushed = push_target(request.app[keys.HUB], user, access.space.id, access.model.id)
    lock = request.app[keys.HUB].repos.lock(path)
    ref = prefix + name.encode()
    async with request.app[keys.HUB].locks.hold(("repository", access.space.id, access.model.id)):
        await run_git(request, pushed.moving(lambda: delete_ref(path, lock, ref, kind)))
    return web.Response(status=204)


async def post_validate_yaml(request: web.Request) -> web.Response:
    """Check a README's front matter: amphub keeps bad fields as warnings, never errors."""
    try:
        raw = await read_body(request, MAX_README)
    except BodyTooLong:
        raise PayloadTooLarge(f"a README may be at most {MAX_README} bytes here") from None
    refusal = "the body must be a JSON object with the README as content"
    body = parse_json(raw, refusal)
    if not isinstance(body, dict):
        raise BadRequest(refusal)
    content = body.get("content", "")
    card = await request.app[keys.HUB].run_blocking(lambda: parse_card(str(content)))
    return web.json_response({"errors": [], "warnings": [{"message": w} for w in card.warnings]})

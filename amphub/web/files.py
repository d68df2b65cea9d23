"""A model's files: folders at any branch, tag or commit, file views, downloads, history."""

from __future__ import annotations

import math
import posixpath
import re
from urllib.parse import quote, urlencode

from aiohttp import web

from amphub.api import files as files_api
from amphub.api.models import ref_scan_json
from amphub.errors import BadRequest
from amphub.http import keys
from amphub.http.headers import DOWNLOAD_HEADERS
from amphub.storage.last_changes import last_changes
from amphub.web.modelpage import header, viewable_model
from amphub.web.rendered import code_html
from amphub.web.view import page, redirect

REV = re.compile(r"[A-Za-z0-9._-]+")
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
# Files past this size are offered for download only.
VIEW_LIMIT = 1024 * 1024
# A folder lists this many entries a page; only the page's files are read.
ENTRIES_PER_PAGE = 500
AUTHOR = re.compile(r"^(.*?)\s*<([^>]*)>$")


def _crumbs(home: str, rev: str, folder: str) -> list[tuple[str, str]]:
    """(name, address) of each folder from the root down to `folder`."""
    crumbs = [("files", f"{home}/files/{rev}")]
    parts = [part for part in folder.split("/") if part]
    for depth, part in enumerate(parts, start=1):
        crumbs.append((part, f"{home}/files/{rev}/{quote('/'.join(parts[:depth]))}"))
    return crumbs


def _page_number(request: web.Request) -> int:
    try:
        number = int(request.query.get("page", "1"))
    except ValueError:
        raise BadRequest("page must be a whole number") from None
    if number < 1:
        raise BadRequest("page starts at 1")
    return number


def _rev_label(rev: str) -> str:
    return rev[:10] if COMMIT_ID.fullmatch(rev) else rev


async def get_switch(request: web.Request) -> web.Response:
    """Where the branch/tag/commit switcher sends the browser: the same view at that revision."""
    rev = request.query.get("rev", "").strip() or "master"
    if not REV.fullmatch(rev):
        raise BadRequest(f"{rev!r} is not a branch, tag or commit id")
    view = request.path.rsplit("/", 1)[-1]  # "files" or "commits"
    folder = request.query.get("path", "").strip("/") if view == "files" else ""
    target = f"/{request.match_info['space']}/{request.match_info['model']}/{view}/{rev}"
    return redirect(target + (f"/{quote(folder)}" if folder else ""))


async def get_files(request: web.Request) -> web.Response:
    """A folder: its files with size, LFS marker and scan status; the ref switcher."""
    access = await viewable_model(request)
    _, repo = await files_api.model_repo(request)
    rev, folder = request.match_info["rev"], request.match_info["path"].strip("/")
    refs = await files_api.refs_json(request)
    current = _page_number(request)
    scan = await files_api.rev_scan(request, repo, rev)
    total, entries = await files_api.tree_entries(
        request, repo, rev, folder, (current - 1) * ENTRIES_PER_PAGE, ENTRIES_PER_PAGE, scan
    )
    m = header(request, access, "files", rev)
    names = [posixpath.basename(entry["path"]) for entry in entries]
    hub = request.app[keys.HUB]
    changed = await hub.run_blocking(lambda: last_changes(repo, rev, folder, names))
    for entry in entries:
        entry["name"] = posixpath.basename(entry["path"])
        last = changed.get(entry["name"])
        if last is not None:
            entry["last"] = _commit_view(files_api.commit_json(last), m["home"])
        kind = "files" if entry["type"] == "directory" else "blob"
        entry["href"] = f"{m['home']}/{kind}/{rev}/{quote(entry['path'])}"
        entry["raw"] = f"{m['home']}/raw/{rev}/{quote(entry['path'])}"
    return page(
        request,
        "files.html",
        m=m,
        rev=rev,
        rev_label=_rev_label(rev),
        folder=folder,
        crumbs=_crumbs(m["home"], rev, folder),
        entries=entries,
        refs=refs,
        rs=ref_scan_json(scan),
        commit=scan.commit,
        current=current,
        pages=max(1, math.ceil(total / ENTRIES_PER_PAGE)),
        total=total,
    )


async def get_blob_page(request: web.Request) -> web.Response:
    """One file: text and code shown highlighted, anything else offered for download."""
    access = await viewable_model(request)
    _, repo = await files_api.model_repo(request)
    rev, file = request.match_info["rev"], request.match_info["path"]
    scan = await files_api.rev_scan(request, repo, rev)
    entry = await files_api.file_json(request, repo, rev, file, scan)
    shown = None
    if not entry.get("lfs") and not entry.get("binary") and entry["size"] <= VIEW_LIMIT:
        text = (await files_api.file_data(request, repo, rev, file)).decode(errors="replace")
        shown = await code_html(request.app[keys.HUB], posixpath.basename(file), text)
    m = header(request, access, "files", rev)
    return page(
        request,
        "blob.html",
        m=m,
        rev=rev,
        rev_label=_rev_label(rev),
        file=file,
        entry=entry,
        rs=ref_scan_json(scan),
        shown=shown,
        crumbs=_crumbs(m["home"], rev, posixpath.dirname(file)),
        raw=f"{m['home']}/raw/{rev}/{quote(file)}",
        history=f"{m['home']}/commits/{rev}?{urlencode({'path': file})}",
        view_limit=VIEW_LIMIT,
    )


def content_disposition(name: str) -> str:
    """`attachment` with the file's name, UTF-8 names included (RFC 6266)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def get_raw(request: web.Request) -> web.StreamResponse:
    """Download a file, LFS content included, through the API's own blob handler."""
    await viewable_model(request)
    disposition = content_disposition(posixpath.basename(request.match_info["path"]))
    response = await files_api.get_blob(request, disposition)
    response.headers["Content-Disposition"] = disposition
    response.headers.update(DOWNLOAD_HEADERS)
    return response


def _commit_view(commit: dict, home: str, tags: dict[str, list[str]] | None = None) -> dict:
    title, _, body = commit["message"].strip().partition("\n")
    author = AUTHOR.match(commit["author"])
    return {
        **commit,
        "title": title,
        "body": body.strip(),
        "author_name": author.group(1) if author else commit["author"],
        "files": f"{home}/files/{commit['id']}",
        "page": f"{home}/commit/{commit['id']}",
        "tags": (tags or {}).get(commit["id"], []),
    }


def _tags_by_commit(refs: dict) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for tag in refs["tags"]:
        tags.setdefault(tag["commit"], []).append(tag["name"])
    return tags


async def get_commit_page(request: web.Request) -> web.Response:
    """One commit: its message, author, tags, and what it changed, file by file."""
    access = await viewable_model(request)
    found = await files_api.commit_changes_json(request)
    refs = await files_api.refs_json(request)
    m = header(request, access, "commits", found["commit"]["id"])
    return page(
        request,
        "commit.html",
        m=m,
        commit=_commit_view(found["commit"], m["home"], _tags_by_commit(refs)),
        files=found["files"],
        more=found["more"],
    )


async def get_commits_page(request: web.Request) -> web.Response:
    """The history of a branch, tag or commit, newest first, a page at a time."""
    access = await viewable_model(request)
    found = await files_api.commits_json(request)
    rev = request.match_info["rev"]
    m = header(request, access, "commits", rev)
    refs = await files_api.refs_json(request)
    return page(
        request,
        "commits.html",
        m=m,
        rev=rev,
        file=request.query.get("path", "").strip("/"),
        rev_label=_rev_label(rev),
        refs=refs,
        commits=[
            _commit_view(commit, m["home"], _tags_by_commit(refs)) for commit in found["commits"]
        ],
        next_page=found["next_page"],
        current=int(request.query.get("page", 1)),
    )

"""A model's files, refs and history as the Hub lists them: tree, paths-info, refs, commits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from amphub import db
from amphub.clock import rfc3339
from amphub.hf.access import repository, require_repo, revision_resolver, run_git
from amphub.hf.paging import flag, paged_response, requested_page
from amphub.hf.repo import (
    HUB_DEFAULT_BRANCH,
    CommitSummary,
    HubEntry,
    default_branch,
    last_commits,
    list_entries,
    path_entries,
)
from amphub.http import keys
from amphub.http.access import ModelAccess
from amphub.policy import Action
from amphub.scan.findings import SCANNER_VERSION
from amphub.services.scans import ref_scan, with_history
from amphub.storage.repo_files import CommitInfo, list_commits, list_refs

# The Hub's page sizes: expanding an entry walks the history, so those pages are short.
TREE_PAGE = 1000
EXPANDED_TREE_PAGE = 50
COMMITS_PAGE = 100
MAX_COMMITS_PAGE = 1000


def entry_json(entry: HubEntry) -> dict[str, Any]:
    """A file or folder as the Hub's tree listing shows it."""
    item = {"type": entry.type, "oid": entry.oid, "size": entry.size, "path": entry.path}
    if entry.lfs:
        item["lfs"] = {
            "oid": entry.lfs.oid,
            "size": entry.lfs.size,
            "pointerSize": entry.pointer_size,
        }
    return item


def _security(verdict: dict[str, Any] | None) -> dict[str, Any]:
    """A file's last scan verdict in the Hub's securityFileStatus shape, findings added."""
    found = verdict or {}
    answer = {
        "status": found.get("status", "unscanned"),
        "avScan": None,  # amphub runs no virus scanner
        "pickleImportScan": found.get("pickleImportScan"),
        "findings": found.get("findings", []),
    }
    if found.get("history"):
        answer["history"] = found["history"]
    return answer


async def _expanded(
    request: web.Request,
    access: ModelAccess,
    commit_id: str,
    entries: list[HubEntry],
    commits: dict[str, CommitSummary],
) -> list[dict[str, Any]]:
    """The entries with their last commit and, for files, their last scan verdict.

    A file whose earlier version leaked a secret is unsafe, as the commit's scan found.
    """
    ids = [e.lfs.oid if e.lfs else e.oid for e in entries if e.type == "file"]
    hub = request.app[keys.HUB]
    verdicts = await db.scan_verdicts(hub.db, ids, SCANNER_VERSION)
    found = await ref_scan(hub, access.space.id, access.model.id, commit_id, commit_id)
    scanned = found.files if found.state == "scanned" else {}
    items = []
    for entry in entries:
        item = entry_json(entry)
        last = commits.get(entry.path)
        if last:
            item["lastCommit"] = {"id": last.id, "title": last.title, "date": last.date}
        if entry.type == "file":
            stored = verdicts.get(entry.lfs.oid if entry.lfs else entry.oid)
            verdict = with_history(json.loads(stored) if stored else None, scanned.get(entry.path))
            item["securityFileStatus"] = _security(verdict)
        items.append(item)
    return items


async def get_tree(request: web.Request) -> web.Response:
    """The files and folders of a folder at a revision, a page at a time."""
    access = await require_repo(request, Action.READ_FILES)
    path = repository(request, access)
    rev, folder = request.match_info["rev"], request.match_info["path"].strip("/")
    recursive, expand = flag(request, "recursive"), flag(request, "expand")
    size = EXPANDED_TREE_PAGE if expand else TREE_PAGE
    page = requested_page(request, size, size)

    resolve = revision_resolver(request)

    def read() -> tuple[str, list[HubEntry], bool, dict[str, CommitSummary]]:
        commit_id = resolve(path, rev)
        entries = list_entries(path, commit_id, folder, recursive)
        shown = entries[page.offset : page.offset + page.limit]
        commits = last_commits(path, commit_id, [e.path for e in shown]) if expand else {}
        return commit_id, shown, len(entries) > page.offset + page.limit, commits

    commit_id, shown, more, commits = await run_git(request, read)
    items = (
        await _expanded(request, access, commit_id, shown, commits)
        if expand
        else list(map(entry_json, shown))
    )
    return paged_response(request, items, page, more)


async def post_paths_info(request: web.Request) -> web.Response:
    """The entries at the paths asked for (a form with `paths` and `expand`)."""
    access = await require_repo(request, Action.READ_FILES)
    path = repository(request, access)
    rev = request.match_info["rev"]
    form = await request.post()
    wanted = [str(p) for p in form.getall("paths", [])]
    expand = str(form.get("expand", "")).lower() in ("1", "true")

    resolve = revision_resolver(request)

    def read() -> tuple[str, list[HubEntry], dict[str, CommitSummary]]:
        commit_id = resolve(path, rev)
        entries = path_entries(path, commit_id, wanted)
        commits = last_commits(path, commit_id, [e.path for e in entries]) if expand else {}
        return commit_id, entries, commits

    commit_id, entries, commits = await run_git(request, read)
    items = (
        await _expanded(request, access, commit_id, entries, commits)
        if expand
        else list(map(entry_json, entries))
    )
    return web.json_response(items)


async def get_refs(request: web.Request) -> web.Response:
    """Branches and tags with the commits they point at; amphub has no pull requests."""
    path = repository(request, await require_repo(request, Action.READ_FILES))
    refs = await run_git(request, lambda: list_refs(path))

    def listed(kind: str, prefix: str) -> list[dict[str, Any]]:
        return [
            {"name": r["name"], "ref": prefix + r["name"], "targetCommit": r["commit"]}
            for r in refs[kind]
        ]

    branches = listed("branches", "refs/heads/")
    names = {b["name"] for b in branches}
    if HUB_DEFAULT_BRANCH not in names and default_branch() in names:
        # The Hub's clients look for `main`, which names master here: list it first as such.
        master = next(b for b in branches if b["name"] == default_branch())
        main = {**master, "name": HUB_DEFAULT_BRANCH, "ref": "refs/heads/" + HUB_DEFAULT_BRANCH}
        branches.insert(0, main)
    return web.json_response(
        {
            "branches": branches,
            "converts": [],
            "tags": listed("tags", "refs/tags/"),
            "pullRequests": [],
        }
    )


def commit_json(commit: CommitInfo) -> dict[str, Any]:
    """A commit as the Hub's history shows it."""
    title, _, body = commit.message.strip().partition("\n")
    author = commit.author.split(" <", 1)[0]
    return {
        "id": commit.id,
        "title": title,
        "message": body.strip(),
        "date": rfc3339(datetime.fromtimestamp(commit.committed_at, UTC)),
        "authors": [{"user": author}],
    }


async def get_commits(request: web.Request) -> web.Response:
    """The history of a revision, newest first, a page at a time."""
    path = repository(request, await require_repo(request, Action.READ_FILES))
    rev = request.match_info["rev"]
    page = requested_page(request, COMMITS_PAGE, MAX_COMMITS_PAGE)
    # One commit more than the page tells whether there is a next page.
    resolve = revision_resolver(request)
    commits = await run_git(
        request, lambda: list_commits(path, resolve(path, rev), page.offset, page.limit + 1)
    )
    items = [commit_json(commit) for commit in commits[: page.limit]]
    return paged_response(request, items, page, len(commits) > page.limit)

"""The scan task: every file of a commit, LFS content included, each blob scanned once.

Verdicts are kept per blob (git blob id, or LFS oid) and scanner version, so a new commit
costs only its new content and a new scanner version scans everything again. Text files
are also checked in their earlier versions, because a secret removed in a later commit is
still in the history that every clone gets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amphub import db
from amphub.scan.findings import SCANNER_VERSION, FindingJson, VerdictJson, worst
from amphub.services.objects import intact_object_file, stored_object
from amphub.services.scan_pool import scan_file
from amphub.services.tasks import TaskContext, TaskFailed
from amphub.storage.repo_files import Entry, earlier_versions, read_object, walk_files

# Earlier versions of a text file checked for secrets.
HISTORY_LIMIT = 20


def _unreadable(message: str) -> VerdictJson:
    """The verdict of content that could not be read as it was pushed."""
    finding: FindingJson = {"kind": "format", "message": message, "severity": "suspicious"}
    return {"status": "error", "findings": [finding]}


MISSING_LFS = _unreadable("the LFS content of this file is not stored on this server")
DAMAGED_LFS = _unreadable(
    "the LFS content of this file is damaged on this server (it does not hash to its oid);"
    " it was moved aside: push it again"
)


async def _verdict(
    ctx: TaskContext, repo: Path, entry: Entry, known: dict[str, str]
) -> Mapping[str, Any]:
    """A file's verdict, from earlier scans where the same content was seen."""
    hub, task = ctx.hub, ctx.task
    sha, content_id = entry.sha, entry.content_id
    if sha is None or content_id is None:  # a folder: walk_files lists files only
        raise TaskFailed(f"{entry.path} is not a file")
    if entry.lfs:
        # The disk is checked before any verdict is given: nothing to keep either way.
        if await stored_object(hub, task.space_id, task.model_id, entry.lfs.oid) is None:
            return MISSING_LFS
        if content_id in known:
            return json.loads(known[content_id])
        async with intact_object_file(hub, entry.lfs.oid, entry.lfs.size) as file:
            if file is None:
                return DAMAGED_LFS
            verdict = await scan_file(hub, entry.path, file, None, entry.lfs.size)
    elif content_id in known:
        return json.loads(known[content_id])
    else:
        data = await hub.run_blocking(lambda: read_object(repo, sha))
        verdict = await scan_file(hub, entry.path, None, data, len(data))
    await db.store_verdict(hub.db, content_id, SCANNER_VERSION, json.dumps(verdict))
    return verdict


async def _history(
    ctx: TaskContext, repo: Path, entry: Entry, versions: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """Secrets in the earlier versions (commit id, blob id, path then) of a text file."""
    known = await db.scan_verdicts(ctx.hub.db, [sha for _, sha, _ in versions], SCANNER_VERSION)
    found = []
    for commit_id, sha, path in versions:
        verdict = await _verdict(ctx, repo, Entry(path, "file", None, sha=sha), known)
        secrets = [f for f in verdict.get("findings", []) if f["kind"] == "secret"]
        if secrets:
            found.append({"commit": commit_id, "path": path, "findings": secrets})
    return found


async def run_scan(ctx: TaskContext) -> dict[str, Any]:
    """Scan every file of the task's commit and summarize."""
    hub, task = ctx.hub, ctx.task
    repo = hub.repos.path(task.space_id, task.model_id)
    if not repo.is_dir():
        raise TaskFailed(f"model {task.space_id}/{task.model_id} no longer exists")
    _, commit_id = ctx.revision()
    commit, files = await hub.run_blocking(lambda: walk_files(repo, commit_id))
    text = [entry.path for entry in files if not entry.lfs and not entry.binary]
    await ctx.progress(0, len(files), f"reading the history of {len(text)} text files")
    earlier = await hub.run_blocking(lambda: earlier_versions(repo, commit, text, HISTORY_LIMIT))
    ids = [entry.content_id for entry in files if entry.content_id]
    known = await db.scan_verdicts(hub.db, ids, SCANNER_VERSION)
    results: dict[str, dict] = {}
    for done, entry in enumerate(files):
        await ctx.progress(done, len(files), f"scanning {entry.path}")
        verdict = dict(await _verdict(ctx, repo, entry, known))
        if entry.path in earlier.versions:
            history = await _history(ctx, repo, entry, earlier.versions[entry.path])
            if history:
                verdict["history"] = history
                verdict["status"] = worst([verdict["status"], "unsafe"])
        results[entry.path] = verdict
    summary = summarize(results)
    for status, count in summary["counts"].items():
        hub.metrics.scan_verdicts.labels(status).inc(count)
    return {"commit": commit, "summary": summary, "files": results}


def summarize(results: dict[str, dict]) -> dict[str, Any]:
    """The model's summary: the worst status and how many files have each status."""
    counts: dict[str, int] = {}
    for verdict in results.values():
        counts[verdict["status"]] = counts.get(verdict["status"], 0) + 1
    return {
        "status": worst([v["status"] for v in results.values()]) if results else "safe",
        "files": len(results),
        "counts": counts,
        "scanner_version": SCANNER_VERSION,
    }

"""What the finished scans say about a branch, tag or commit, for the places people decide."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from amphub import db
from amphub.services.hub import Hub


@dataclass(frozen=True)
class RefScan:
    """The scan that describes a ref at a commit, and its verdict of each file by path.

    `state` is `scanned` (a scan of that commit), `outdated` (the ref moved since its last
    scan) or `not_scanned`.
    """

    state: str
    ref: str
    commit: str | None
    task: db.Task | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def folder(self, prefix: str) -> dict[str, int]:
        """How many files under a folder have each status other than safe or skipped."""
        counts: dict[str, int] = {}
        for path, verdict in self.files.items():
            status = verdict.get("status", "")
            if path.startswith(prefix + "/") and status not in ("safe", "skipped"):
                counts[status] = counts.get(status, 0) + 1
        return counts


async def ref_scan(hub: Hub, space_id: str, model_id: str, ref: str, commit: str | None) -> RefScan:
    """The verdict for `ref` at `commit`: that commit's last scan, else the ref's last one."""
    state, task = "scanned", None
    if commit is not None:
        task = await db.last_scan(hub.db, space_id, model_id, commit_id=commit)
    if task is None:
        state, task = "outdated", await db.last_scan(hub.db, space_id, model_id, ref=ref)
    if task is None:
        return RefScan("not_scanned", ref, commit)
    result = json.loads(task.result or "{}")
    return RefScan(state, ref, commit, task, result.get("summary", {}), result.get("files", {}))


def with_history(
    verdict: dict[str, Any] | None, scanned: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A file's verdict with what its scan found in the file's earlier versions.

    A secret leaked by an earlier version stays in every clone, so the file counts as
    unsafe wherever its verdict is shown, as the scan's result counts it.
    """
    history = (scanned or {}).get("history")
    if not history:
        return verdict
    found = dict(verdict or {"status": "safe", "findings": []})
    found["history"] = history
    found["status"] = "unsafe"  # the worst there is, as the scan counts the file
    return found

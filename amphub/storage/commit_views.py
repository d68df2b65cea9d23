"""What a commit changed, file by file, renames found (blocking)."""

from __future__ import annotations

import difflib
import stat
from dataclasses import dataclass
from pathlib import Path

from dulwich.diff_tree import CHANGE_ADD, CHANGE_DELETE, CHANGE_RENAME
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

from amphub.storage.renames import changes_with_renames
from amphub.storage.repo_files import (
    BINARY_PROBE,
    CommitInfo,
    LfsPointer,
    commit_info,
    find_commit,
    parse_pointer,
    read_as,
)

# A commit page shows at most this many files, and the text of files up to this size.
MAX_FILES = 300
MAX_DIFF_SIZE = 256 * 1024
# Lines of diff for the whole page; past them, files are named only.
MAX_DIFF_LINES = 5000
KINDS = {CHANGE_ADD: "added", CHANGE_DELETE: "deleted", CHANGE_RENAME: "renamed"}


@dataclass(frozen=True)
class FileChange:
    """One file a commit added, deleted, modified or renamed.

    `lines` is the unified diff of a text file (None for a binary, an LFS file or one too
    large); `old_lfs` and `new_lfs` the LFS pointers before and after; `old_path` the name
    a renamed file had.
    """

    path: str
    kind: str  # "added", "deleted", "modified" or "renamed"
    old_lfs: LfsPointer | None
    new_lfs: LfsPointer | None
    binary: bool
    lines: list[str] | None
    old_path: str | None = None


@dataclass(frozen=True)
class CommitChanges:
    """A commit, what it changed (its first parent to it) and whether files were left out."""

    commit: CommitInfo
    files: list[FileChange]
    more: int


def _data(repo: Repo, sha: bytes | None) -> bytes:
    if sha is None:
        return b""
    blob = read_as(repo, sha, Blob)
    return b"" if blob.raw_length() > MAX_DIFF_SIZE else blob.as_raw_string()


def _change(
    repo: Repo, names: tuple[str, str], kind: str, old: bytes | None, new: bytes | None, budget: int
) -> FileChange:
    old_path, path = names
    old_data, new_data = _data(repo, old), _data(repo, new)
    old_lfs, new_lfs = parse_pointer(old_data), parse_pointer(new_data)
    binary = b"\0" in old_data[:BINARY_PROBE] or b"\0" in new_data[:BINARY_PROBE]
    large = any(sha and read_as(repo, sha, Blob).raw_length() > MAX_DIFF_SIZE for sha in (old, new))
    lines = None
    if not (old_lfs or new_lfs or binary or large) and budget > 0:
        lines = list(
            difflib.unified_diff(
                old_data.decode(errors="replace").splitlines(),
                new_data.decode(errors="replace").splitlines(),
                fromfile=f"a/{old_path}",
                tofile=f"b/{path}",
                lineterm="",
            )
        )[2:]  # the ---/+++ lines: the page names the file itself
    renamed = old_path if kind == "renamed" else None
    return FileChange(path, kind, old_lfs, new_lfs, binary or large, lines, renamed)


def commit_changes(path: Path, rev: str) -> CommitChanges:
    """What the commit `rev` changed against its first parent (everything, for a root).

    Renamed files are found as `git diff` finds them (see `amphub.storage.renames`).
    """
    with Repo(str(path)) as repo:
        commit = find_commit(repo, rev)
        parent = read_as(repo, commit.parents[0], Commit).tree if commit.parents else None
        changes = changes_with_renames(repo, parent, commit.tree)
        files, budget = [], MAX_DIFF_LINES
        for change in changes[:MAX_FILES]:
            old, new = change.old, change.new
            kind = KINDS.get(change.type, "modified")
            name = (new.path if new and new.path else old.path if old else b"") or b""
            old_name = (old.path if old and old.path else name).decode(errors="replace")
            old_sha = old.sha if old and old.mode and not stat.S_ISDIR(old.mode) else None
            new_sha = new.sha if new and new.mode and not stat.S_ISDIR(new.mode) else None
            names = (old_name, name.decode(errors="replace"))
            found = _change(repo, names, kind, old_sha, new_sha, budget)
            budget -= len(found.lines or [])
            files.append(found)
        return CommitChanges(commit_info(commit), files, max(0, len(changes) - MAX_FILES))

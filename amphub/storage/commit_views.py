"""What a commit changed, and which commit last changed each file of a folder (blocking)."""

from __future__ import annotations

import difflib
import stat
from dataclasses import dataclass
from pathlib import Path

from dulwich.diff_tree import CHANGE_ADD, CHANGE_DELETE, tree_changes
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from amphub.storage.repo_files import (
    BINARY_PROBE,
    CommitInfo,
    LfsPointer,
    PathNotFound,
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
# Commits walked to find each file's last change; older ones are left unnamed.
LAST_CHANGE_WALK = 2000


@dataclass(frozen=True)
class FileChange:
    """One file a commit added, deleted or modified.

    `lines` is the unified diff of a text file (None for a binary, an LFS file or one too
    large); `old_lfs` and `new_lfs` the LFS pointers before and after.
    """

    path: str
    kind: str  # "added", "deleted" or "modified"
    old_lfs: LfsPointer | None
    new_lfs: LfsPointer | None
    binary: bool
    lines: list[str] | None


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
    repo: Repo, path: str, kind: str, old: bytes | None, new: bytes | None, budget: int
) -> FileChange:
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
                fromfile=f"a/{path}",
                tofile=f"b/{path}",
                lineterm="",
            )
        )[2:]  # the ---/+++ lines: the page names the file itself
    return FileChange(path, kind, old_lfs, new_lfs, binary or large, lines)


def commit_changes(path: Path, rev: str) -> CommitChanges:
    """What the commit `rev` changed against its first parent (everything, for a root)."""
    with Repo(str(path)) as repo:
        commit = find_commit(repo, rev)
        parent = read_as(repo, commit.parents[0], Commit).tree if commit.parents else None
        changes = list(tree_changes(repo.object_store, parent, commit.tree))
        files, budget = [], MAX_DIFF_LINES
        for change in changes[:MAX_FILES]:
            old, new = change.old, change.new
            kind = {CHANGE_ADD: "added", CHANGE_DELETE: "deleted"}.get(change.type, "modified")
            name = (new.path if new and new.path else old.path if old else b"") or b""
            old_sha = old.sha if old and old.mode and not stat.S_ISDIR(old.mode) else None
            new_sha = new.sha if new and new.mode and not stat.S_ISDIR(new.mode) else None
            found = _change(repo, name.decode(errors="replace"), kind, old_sha, new_sha, budget)
            budget -= len(found.lines or [])
            files.append(found)
        return CommitChanges(commit_info(commit), files, max(0, len(changes) - MAX_FILES))


def _entries(repo: Repo, tree_id: bytes, folder: str) -> dict[bytes, bytes]:
    """The names and object ids in a folder of a tree; empty where the folder is not."""
    tree = read_as(repo, tree_id, Tree)
    for part in [p for p in folder.split("/") if p]:
        try:
            mode, sha = tree[part.encode()]
        except KeyError:
            return {}
        if not stat.S_ISDIR(mode):
            return {}
        tree = read_as(repo, sha, Tree)
    return {item.path: item.sha for item in tree.iteritems()}


def last_changes(path: Path, rev: str, folder: str, names: list[str]) -> dict[str, CommitInfo]:
    """For each name in a folder, the newest commit (from `rev` back) that changed it.

    One walk along first parents for the whole folder, comparing the folder's entries
    with the parent's: a page of a folder costs one walk, not one per file.
    """
    with Repo(str(path)) as repo:
        commit = find_commit(repo, rev)
        left = {name.encode() for name in names}
        found: dict[str, CommitInfo] = {}
        current = _entries(repo, commit.tree, folder)
        if not current:
            raise PathNotFound(f"no folder {folder} in this revision")
        for _ in range(LAST_CHANGE_WALK):
            if not left:
                break
            parent = read_as(repo, commit.parents[0], Commit) if commit.parents else None
            before = _entries(repo, parent.tree, folder) if parent else {}
            for name in [n for n in left if current.get(n) != before.get(n)]:
                found[name.decode()] = commit_info(commit)
                left.discard(name)
            if parent is None:
                break
            commit, current = parent, before
        return found

"""What a commit changed, and which commit last changed each file of a folder (blocking)."""

from __future__ import annotations

import difflib
import functools
import heapq
import stat
from dataclasses import dataclass
from pathlib import Path

from dulwich.diff_tree import CHANGE_ADD, CHANGE_DELETE, CHANGE_RENAME
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from amphub.storage.renames import changes_with_renames
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
# Folders (at one commit, one page of names) whose files' last commits are kept.
LAST_CHANGE_CACHE = 256
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


class _Folder:
    """A folder's tree id and entries at each commit, each tree read once."""

    def __init__(self, repo: Repo, folder: str) -> None:
        self.repo = repo
        self.parts = [part.encode() for part in folder.split("/") if part]
        self.trees: dict[bytes, bytes | None] = {}  # commit id -> the folder's tree id
        self.entries: dict[bytes, dict[bytes, bytes]] = {}  # folder tree id -> entries

    def tree(self, commit: Commit) -> bytes | None:
        """The folder's tree id in the commit, None where there is no such folder."""
        if commit.id not in self.trees:
            tree_id: bytes | None = commit.tree
            for part in self.parts:
                assert tree_id is not None
                try:
                    mode, tree_id = read_as(self.repo, tree_id, Tree)[part]
                except KeyError:
                    tree_id = None
                    break
                if not stat.S_ISDIR(mode):
                    tree_id = None
                    break
            self.trees[commit.id] = tree_id
        return self.trees[commit.id]

    def at(self, tree_id: bytes | None) -> dict[bytes, bytes]:
        """The names and object ids in a folder tree (none for no folder)."""
        if tree_id is None:
            return {}
        if tree_id not in self.entries:
            tree = read_as(self.repo, tree_id, Tree)
            self.entries[tree_id] = {item.path: item.sha for item in tree.iteritems()}
        return self.entries[tree_id]


def _pass_on(
    repo: Repo, folder: _Folder, commit: Commit, names: set[bytes]
) -> tuple[set[bytes], dict[bytes, set[bytes]]]:
    """(the names the commit changed, the parent each other name is followed to).

    git's default history simplification: a name a parent has unchanged is followed to the
    first such parent; a name the commit has unlike every parent is changed there.
    """
    tree = folder.tree(commit)
    parents = [read_as(repo, parent, Commit) for parent in commit.parents]
    parent_trees = [folder.tree(parent) for parent in parents]
    changed: set[bytes] = set()
    followed: dict[bytes, set[bytes]] = {}
    for name in names:
        ours = folder.at(tree).get(name)
        for parent, parent_tree in zip(parents, parent_trees, strict=True):
            if parent_tree == tree or folder.at(parent_tree).get(name) == ours:
                followed.setdefault(parent.id, set()).add(name)
                break
        else:
            changed.add(name)
    return changed, followed


def last_changes(path: Path, rev: str, folder: str, names: list[str]) -> dict[str, CommitInfo]:
    """For each name in a folder, the commit `git log -1 rev -- folder/name` names.

    One walk, newest commit first, for the whole folder: every name is followed together
    until a commit changed it, so a page of a folder costs one walk, not one per file, and
    the walk stops once every name is found. Answers are kept per commit id and folder.
    """
    with Repo(str(path)) as repo:
        commit_id = find_commit(repo, rev).id
    return dict(_last_changes(path, commit_id, folder, tuple(sorted(names))))


@functools.lru_cache(maxsize=LAST_CHANGE_CACHE)
def _last_changes(
    path: Path, commit_id: bytes, folder: str, names: tuple[str, ...]
) -> dict[str, CommitInfo]:
    with Repo(str(path)) as repo:
        start = read_as(repo, commit_id, Commit)
        tree = _Folder(repo, folder)
        if tree.tree(start) is None:
            raise PathNotFound(f"no folder {folder} in this revision")
        found: dict[str, CommitInfo] = {}
        waiting: dict[bytes, set[bytes]] = {start.id: {name.encode() for name in names}}
        queue: list[tuple[int, bytes]] = [(-start.commit_time, start.id)]
        while queue:
            _, commit_id = heapq.heappop(queue)
            commit = read_as(repo, commit_id, Commit)
            changed, followed = _pass_on(repo, tree, commit, waiting.pop(commit_id))
            for name in changed:
                found[name.decode()] = commit_info(commit)
            for parent_id, passed in followed.items():
                if parent_id not in waiting:
                    parent = read_as(repo, parent_id, Commit)
                    heapq.heappush(queue, (-parent.commit_time, parent_id))
                waiting.setdefault(parent_id, set()).update(passed)
        return found

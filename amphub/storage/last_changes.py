"""The commit that last changed each file of a folder, as `git log -1 -- path` (blocking).

git's default history simplification decides which commit that is: a commit that has a
name as one of its parents had it passes the name on to the first such parent, and a
commit that has it unlike every parent changed it. Every name of the folder is followed
at once, newest commit first, until each is found; the answer for a folder at a commit is
kept, and a later walk that reaches that commit takes its answers from it, so after a push
only the new commits are read.
"""

from __future__ import annotations

import heapq
import stat
import threading
from collections import OrderedDict
from pathlib import Path

from dulwich.objects import Commit, Tree
from dulwich.repo import Repo

from amphub.storage.repo_files import CommitInfo, PathNotFound, commit_info, find_commit, read_as

# Folders (at one commit) whose files' last commits are kept, in this process.
KEPT_FOLDERS = 64
# Folder trees read during one walk kept parsed (a commit's, then its parents').
PARSED_TREES = 16

Known = dict[bytes, CommitInfo]
_known: OrderedDict[tuple[str, bytes, str], Known] = OrderedDict()
_known_lock = threading.Lock()


def _recall(key: tuple[str, bytes, str]) -> Known | None:
    with _known_lock:
        found = _known.get(key)
        if found is not None:
            _known.move_to_end(key)
        return found


def _keep(key: tuple[str, bytes, str], answer: Known) -> None:
    with _known_lock:
        _known[key] = answer
        while len(_known) > KEPT_FOLDERS:
            _known.popitem(last=False)


class _Folder:
    """A folder's tree id and entries at each commit of one walk."""

    def __init__(self, repo: Repo, folder: str) -> None:
        self.repo = repo
        self.parts = [part.encode() for part in folder.split("/") if part]
        self.trees: dict[bytes, bytes | None] = {}  # commit id -> the folder's tree id
        self.parsed: dict[bytes, Tree] = {}

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
                if tree_id is None or not stat.S_ISDIR(mode):
                    tree_id = None
                    break
            self.trees[commit.id] = tree_id
        return self.trees[commit.id]

    def entry(self, tree_id: bytes | None, name: bytes) -> bytes | None:
        """The object id of `name` in a folder tree, None where there is none."""
        if tree_id is None:
            return None
        if tree_id not in self.parsed:
            if len(self.parsed) >= PARSED_TREES:
                del self.parsed[next(iter(self.parsed))]
            self.parsed[tree_id] = read_as(self.repo, tree_id, Tree)
        try:
            return self.parsed[tree_id][name][1]
        except KeyError:
            return None

    def names(self, tree_id: bytes) -> set[bytes]:
        """Every name in a folder tree."""
        return set(read_as(self.repo, tree_id, Tree))


def _pass_on(
    folder: _Folder, commit: Commit, parents: list[Commit], names: set[bytes]
) -> tuple[set[bytes], dict[bytes, set[bytes]]]:
    """(the names the commit changed, the parent each other name is followed to)."""
    tree = folder.tree(commit)
    left, followed = names, dict[bytes, set[bytes]]()
    for parent in parents:
        parent_tree = folder.tree(parent)
        if parent_tree == tree:
            same, left = left, set()
        else:
            same = {n for n in left if folder.entry(tree, n) == folder.entry(parent_tree, n)}
            left = left - same
        if same:
            followed[parent.id] = same
        if not left:
            break
    return left, followed


def _walk(repo: Repo, path: Path, start: Commit, folder: _Folder, key_folder: str) -> Known:
    """The last commit of every name of the folder at `start`."""
    found: Known = {}
    tree = folder.tree(start)
    assert tree is not None
    waiting: dict[bytes, set[bytes]] = {start.id: folder.names(tree)}
    commits: dict[bytes, Commit] = {start.id: start}
    queue: list[tuple[int, bytes]] = [(-start.commit_time, start.id)]
    while queue:
        _, commit_id = heapq.heappop(queue)
        names, commit = waiting.pop(commit_id), commits.pop(commit_id)
        known = _recall((str(path), commit_id, key_folder)) if commit_id != start.id else None
        if known is not None:
            found.update((name, known[name]) for name in names)
            continue
        parents = [commits.get(p) or read_as(repo, p, Commit) for p in commit.parents]
        changed, followed = _pass_on(folder, commit, parents, names)
        if changed:
            info = commit_info(commit)
            found.update((name, info) for name in changed)
        for parent in parents:
            if parent.id in followed:
                if parent.id not in waiting:
                    heapq.heappush(queue, (-parent.commit_time, parent.id))
                    waiting[parent.id], commits[parent.id] = set(), parent
                waiting[parent.id] |= followed[parent.id]
    return found


def last_changes(path: Path, rev: str, folder: str, names: list[str]) -> dict[str, CommitInfo]:
    """For each name in a folder, the commit `git log -1 rev -- folder/name` names."""
    with Repo(str(path)) as repo:
        start = find_commit(repo, rev)
        key = (str(path), start.id, folder.strip("/"))
        known = _recall(key)
        if known is None:
            tree = _Folder(repo, folder)
            if tree.tree(start) is None:
                raise PathNotFound(f"no folder {folder} in this revision")
            known = _walk(repo, path, start, tree, key[2])
            _keep(key, known)
    wanted = {name.encode() for name in names}
    return {name.decode(): info for name, info in known.items() if name in wanted}

"""The commit that last changed each file of a folder, as `git log -1 -- path` (blocking).

git's default history simplification decides which commit that is: a commit that has a
name as one of its parents had it passes the name on to the first such parent, and a
commit that has it unlike every parent changed it. Every name of the folder is followed
at once, newest commit first, until each is found, at most `WALK_BUDGET` commits a call
(a call after goes on where the last stopped). The walk of a folder at a commit is kept,
and a later walk that reaches that commit takes its answers from it, so after a push
only the new commits are read.
"""

from __future__ import annotations

import heapq
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.objects import Commit, Tree
from dulwich.repo import Repo

from amphub.storage.repo_files import CommitInfo, PathNotFound, commit_info, find_commit, read_as

# Folders (at one commit) whose walks are kept, in this process.
KEPT_FOLDERS = 64
# Commits a walk reads in one call (a files page); the next call goes on.
WALK_BUDGET = 2000
# Folder trees read during one walk kept parsed (a commit's, then its parents').
PARSED_TREES = 16

_kept: OrderedDict[tuple[str, bytes, str], _Walk] = OrderedDict()
_kept_lock = threading.Lock()


def _recall(key: tuple[str, bytes, str]) -> _Walk | None:
    """The finished walk of a folder at a commit, if one is kept."""
    with _kept_lock:
        walk = _kept.get(key)
        if walk is None or walk.queue:
            return None
        _kept.move_to_end(key)
        return walk


def _take(key: tuple[str, bytes, str]) -> _Walk | None:
    """The walk of a folder at a commit; one not done leaves the cache, for one thread."""
    with _kept_lock:
        walk = _kept.get(key)
        if walk is not None and walk.queue:
            del _kept[key]
        return walk


def _keep(key: tuple[str, bytes, str], walk: _Walk) -> None:
    with _kept_lock:
        _kept[key] = walk
        _kept.move_to_end(key)
        while len(_kept) > KEPT_FOLDERS:
            _kept.popitem(last=False)


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


@dataclass
class _Walk:
    """A walk for every name of a folder at one commit, done or where it stopped."""

    found: dict[bytes, CommitInfo]
    waiting: dict[bytes, set[bytes]]  # commit id -> the names followed to it
    commits: dict[bytes, Commit]  # the waiting commits
    queue: list[tuple[int, bytes]] = field(default_factory=list)  # newest first

    @classmethod
    def at(cls, start: Commit, names: set[bytes]) -> _Walk:
        return cls({}, {start.id: names}, {start.id: start}, [(-start.commit_time, start.id)])

    def follow(self, commit: Commit, names: set[bytes]) -> None:
        if commit.id not in self.waiting:
            heapq.heappush(self.queue, (-commit.commit_time, commit.id))
            self.waiting[commit.id], self.commits[commit.id] = set(), commit
        self.waiting[commit.id] |= names


def _advance(repo: Repo, path: Path, walk: _Walk, folder: _Folder, key_folder: str) -> None:
    """Walk on, at most `WALK_BUDGET` commits."""
    for _ in range(WALK_BUDGET):
        if not walk.queue:
            return
        _, commit_id = heapq.heappop(walk.queue)
        names, commit = walk.waiting.pop(commit_id), walk.commits.pop(commit_id)
        known = _recall((str(path), commit_id, key_folder))
        if known is not None and known is not walk:
            walk.found.update((name, known.found[name]) for name in names)
            continue
        parents = [walk.commits.get(p) or read_as(repo, p, Commit) for p in commit.parents]
        changed, followed = _pass_on(folder, commit, parents, names)
        if changed:
            info = commit_info(commit)
            walk.found.update((name, info) for name in changed)
        for parent in parents:
            if parent.id in followed:
                walk.follow(parent, followed[parent.id])


def last_changes(path: Path, rev: str, folder: str, names: list[str]) -> dict[str, CommitInfo]:
    """For each name in a folder, the commit `git log -1 rev -- folder/name` names.

    A walk reads at most `WALK_BUDGET` commits a call; names it has not reached yet are
    left out, and the next call for the same folder and commit goes on from there.
    """
    with Repo(str(path)) as repo:
        start = find_commit(repo, rev)
        key = (str(path), start.id, folder.strip("/"))
        walk = _take(key)
        tree = _Folder(repo, folder)
        if walk is None:
            folder_id = tree.tree(start)
            if folder_id is None:
                raise PathNotFound(f"no folder {folder} in this revision")
            walk = _Walk.at(start, tree.names(folder_id))
        try:
            _advance(repo, path, walk, tree, key[2])
        finally:
            _keep(key, walk)
    wanted = {name.encode() for name in names}
    return {name.decode(): info for name, info in walk.found.items() if name in wanted}

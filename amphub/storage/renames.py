"""What changed between two trees, renamed files found as git's diff finds them (blocking).

Exact renames (the same blob under a new name) first, whatever the files; then, among the
added and deleted files left, pairs of small text files whose contents are at least half
the same, as git's default `diff.renames` does. The content comparison is bounded: files
up to `RENAME_MAX_SIZE`, and none at all when more than `RENAME_MAX_FILES` files were added
or deleted (git's own `diff.renameLimit` stops the same way).
"""

from __future__ import annotations

import stat
from collections import Counter
from typing import Any

from dulwich.diff_tree import (
    CHANGE_ADD,
    CHANGE_COPY,
    CHANGE_DELETE,
    CHANGE_RENAME,
    RenameDetector,
    TreeChange,
)
from dulwich.objects import Blob, ObjectID, TreeEntry
from dulwich.repo import Repo

# git's default similarity for a rename (`-M50%`).
RENAME_SIMILARITY = 50
RENAME_MAX_SIZE = 64 * 1024
RENAME_MAX_FILES = 50


def changes_with_renames(
    repo: Repo, old_tree: ObjectID | None, new_tree: ObjectID | None
) -> list[TreeChange]:
    """The changes from `old_tree` to `new_tree`, a renamed file as one `CHANGE_RENAME`."""
    # max_files=0: dulwich pairs exact renames only; its content pass reads whole blobs.
    exact = RenameDetector(repo.object_store, max_files=0).changes_with_renames(old_tree, new_tree)
    # git's diff reports no copies by default: a copy is an added file.
    changes = [TreeChange.add(c.new) if c.type == CHANGE_COPY and c.new else c for c in exact]
    adds = [c for c in changes if c.type == CHANGE_ADD]
    deletes = [c for c in changes if c.type == CHANGE_DELETE]
    if not adds or not deletes or len(adds) > RENAME_MAX_FILES or len(deletes) > RENAME_MAX_FILES:
        return changes
    renames = _similar_pairs(repo, deletes, adds)
    paired = {id(c) for pair in renames for c in pair}
    kept = [c for c in changes if id(c) not in paired]
    kept += [TreeChange(CHANGE_RENAME, delete.old, add.new) for delete, add in renames]
    return sorted(kept, key=_path)


def _path(change: TreeChange) -> bytes:
    side = change.new if change.new is not None and change.new.path else change.old
    return (side.path if side is not None else None) or b""


def _lines(repo: Repo, entry: TreeEntry | None) -> tuple[int, Counter[bytes]] | None:
    """(size, how often each line occurs) of a small text file; None for anything else."""
    if entry is None or entry.sha is None or not stat.S_ISREG(entry.mode or 0):
        return None
    blob: Any = repo.object_store[entry.sha]
    if not isinstance(blob, Blob) or blob.raw_length() > RENAME_MAX_SIZE:
        return None
    data = blob.as_raw_string()
    if b"\0" in data:
        return None
    return len(data), Counter(data.splitlines(keepends=True))


def _similarity(old: tuple[int, Counter[bytes]], new: tuple[int, Counter[bytes]]) -> int:
    """Percent of the larger file's bytes that the other holds too, line by line."""
    larger = max(old[0], new[0])
    if larger == 0:
        return 100
    if min(old[0], new[0]) * 100 < larger * RENAME_SIMILARITY:
        return 0  # too different in size to reach the threshold
    common = sum(len(line) * count for line, count in (old[1] & new[1]).items())
    return common * 100 // larger


def _similar_pairs(
    repo: Repo, deletes: list[TreeChange], adds: list[TreeChange]
) -> list[tuple[TreeChange, TreeChange]]:
    """(deleted, added) pairs at least `RENAME_SIMILARITY` alike, best first, each file once."""
    new_lines = [_lines(repo, add.new) for add in adds]
    scored = []
    for i, delete in enumerate(deletes):
        old = _lines(repo, delete.old)
        if old is None:
            continue
        for j, new in enumerate(new_lines):
            if new is not None and (score := _similarity(old, new)) >= RENAME_SIMILARITY:
                scored.append((-score, i, j))
    pairs, used_old, used_new = [], set(), set()
    for _, i, j in sorted(scored):
        if i not in used_old and j not in used_new:
            used_old.add(i)
            used_new.add(j)
            pairs.append((deletes[i], adds[j]))
    return pairs

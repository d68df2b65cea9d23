"""Shallow fetches: where a history is cut for deepen, deepen-since and deepen-not."""

from __future__ import annotations

from dulwich.errors import GitProtocolError

from amphub.git.packfile import Load
from amphub.git.reach import Cut, commit_links, commit_time


def cut_by_depth(load: Load, starts: list[bytes], depth: int, client: set[bytes]) -> Cut:
    """Keep `depth` commits of each line from `starts`, as `git clone --depth` does."""
    if depth < 1:
        raise GitProtocolError(f"invalid deepen {depth}")
    seen = set(starts)
    frontier = list(seen)
    boundary, interior = set(), set()
    current = 0
    while frontier and current < depth:  # --unshallow asks for a depth of 2**31 - 1
        following = []
        for sha in frontier:
            parents = commit_links(load(sha)[1])[1]
            if current == depth - 1:
                if parents:
                    boundary.add(sha)
                continue
            interior.add(sha)
            for parent in parents:
                if parent not in seen:
                    seen.add(parent)
                    following.append(parent)
        frontier = following
        current += 1
    return Cut(boundary, client & interior, client)


def cut_by_rev_list(
    load: Load, wants: list[bytes], since: int | None, excluded: set[bytes], client: set[bytes]
) -> Cut:
    """Keep the commits newer than `since` that `excluded` does not reach (deepen-since/not)."""
    kept: set[bytes] = set()
    parents_of: dict[bytes, list[bytes]] = {}
    todo = list(wants)
    while todo:
        sha = todo.pop()
        if sha in kept or sha in excluded:
            continue
        text = load(sha)[1]
        if since is not None and commit_time(text) < since:
            continue
        kept.add(sha)
        parents_of[sha] = commit_links(text)[1]
        todo += parents_of[sha]
    if not kept:
        raise GitProtocolError("no commits selected for shallow requests")
    boundary = {sha for sha in kept if any(p not in kept for p in parents_of[sha])}
    return Cut(boundary, client & (kept - boundary), client)


def ancestors(load: Load, tips: list[bytes]) -> set[bytes]:
    """Every commit `tips` reach."""
    seen: set[bytes] = set()
    todo = list(tips)
    while todo:
        sha = todo.pop()
        if sha not in seen:
            seen.add(sha)
            todo += commit_links(load(sha)[1])[1]
    return seen

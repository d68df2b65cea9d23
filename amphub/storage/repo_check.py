"""Checking a repository as `git fsck` would: packs whole, and every object its refs need."""

from __future__ import annotations

import contextlib
from pathlib import Path

from dulwich.repo import Repo

PUSHABLE = (b"refs/heads/", b"refs/tags/")


def repository_problems(path: Path) -> list[str]:
    """What is wrong with a repository: damaged packs, objects its refs need that are gone."""
    repo = Repo(str(path))
    try:
        return _packs_problems(repo) + _reach_problems(repo)
    finally:
        # A pack that failed half-way through a read may still hold a view of its file.
        with contextlib.suppress(BufferError):
            repo.close()


def _packs_problems(repo: Repo) -> list[str]:
    problems = []
    for pack in repo.object_store.packs:
        try:
            pack.check()
        except Exception as exc:  # dulwich raises several kinds for a damaged pack
            problems.append(f"pack {pack.name().decode()} is damaged ({exc})")
    return problems


def _reach_problems(repo: Repo) -> list[str]:
    store = repo.object_store
    tips = [sha for ref, sha in repo.get_refs().items() if ref.startswith(PUSHABLE)]
    try:
        # Commits and trees are read to find what they name; blobs are only looked up.
        missing = [sha for sha, _ in store.find_missing_objects([], tips) if sha not in store]
    except KeyError as exc:
        return [f"object {exc} that a branch or tag needs is missing"]
    except Exception as exc:  # zlib and dulwich errors of a damaged object
        return [f"an object that a branch or tag needs cannot be read ({exc})"]
    return [f"object {sha.decode()} that a branch or tag needs is missing" for sha in missing]

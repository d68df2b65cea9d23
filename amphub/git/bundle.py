"""Git bundles (v2) of one branch's history, and the LFS pointers that history holds.

A bundle is a header naming its one ref, then a pack of every object the ref's commit
reaches. It is written as a clone's pack is, and read back as a push's pack is: checked
object by object (`add_checked_pack`) before it is seen.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from dulwich.objects import Commit, ObjectID, Tree
from dulwich.repo import Repo

from amphub.git.backend import disk_repo
from amphub.git.pack_limits import ChainTooDeep, ObjectTooLarge, add_checked_pack
from amphub.git.packfile import PackFile, raw_loader, write_clone_pack
from amphub.git.reach import read_all_objects, unreachable
from amphub.git.receive import MAX_DELTA_DEPTH, PACK_ERRORS
from amphub.storage.git_objects import object_size
from amphub.storage.repo_files import LFS_POINTER_MAX, LfsPointer, parse_pointer

HEADER = b"# v2 git bundle\n"
# The header's lines: the signature, one ref, the blank line; a ref name is short.
MAX_LINE = 1100


class BadBundle(ValueError):
    """A bundle that is not one branch's whole history; the message says what is wrong."""


def write_bundle(path: Path, ref: str, commit: str, out: Callable[[bytes], object]) -> None:
    """Write a bundle of `ref` at `commit` (hex) and all of its history."""
    out(HEADER + f"{commit} {ref}\n\n".encode())
    with Repo(str(path)) as repo, ExitStack() as stack:
        store = disk_repo(repo).object_store
        packs = [stack.enter_context(PackFile(pack, indexed=True)) for pack in store.packs]
        objects = read_all_objects(packs, Path(store.path), raw_loader(store))
        send = objects.ids - unreachable(objects, {bytes.fromhex(commit)})

        def write(data: bytes) -> None:
            out(data)

        write_clone_pack(write, packs, objects.load, send)


def read_bundle_head(read_line: Callable[[int], bytes]) -> tuple[str, str]:
    """(ref, commit) a bundle's header names; BadBundle unless it is one ref, no prerequisite."""
    if read_line(MAX_LINE) != HEADER:
        raise BadBundle("the bundle is not a git bundle (v2)")
    line = read_line(MAX_LINE)
    parts = line.rstrip(b"\n").split(b" ")
    if len(parts) != 2 or not line.endswith(b"\n") or line.startswith(b"-"):
        raise BadBundle("the bundle must name one ref and need no other commit")
    commit, ref = parts[0].decode("ascii", "replace"), parts[1].decode("utf-8", "replace")
    if read_line(MAX_LINE) != b"\n":
        raise BadBundle("the bundle must name exactly one ref")
    return ref, commit


def store_bundle_pack(
    path: Path, read: Callable[[int], bytes], size: int, max_object_size: int
) -> None:
    """Store a bundle's pack (what follows its header) in a repository, checked as a push's."""
    with Repo(str(path)) as repo:
        try:
            add_checked_pack(
                disk_repo(repo).object_store, read, None, size, max_object_size, MAX_DELTA_DEPTH
            )
        except (ObjectTooLarge, ChainTooDeep) as exc:
            raise BadBundle(f"the bundle's pack breaks this hub's limits: {exc}") from None
        except PACK_ERRORS as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # the file system's failure, not the bundle's
            raise BadBundle(f"the bundle's pack is damaged: {exc}") from None


def history_pointers(path: Path, commit: str) -> tuple[dict[str, int], dict[str, int]]:
    """(LFS objects of `commit`'s own files, those of its whole history) by oid: their sizes.

    Every commit, tree and blob of the history must be there: BadBundle names one that is
    not. A model's history has few commits; each tree and blob is read once.
    """
    with Repo(str(path)) as repo:
        seen: set[bytes] = set()
        found: dict[bytes, LfsPointer | None] = {}
        try:
            top = repo[commit.encode()]
            if not isinstance(top, Commit):
                raise BadBundle(f"{commit[:12]} is not a commit")
            tip = _walk_tree(repo, top.tree, seen, found)
            for entry in repo.get_walker(include=[top.id]):
                _walk_tree(repo, entry.commit.tree, seen, found)
        except KeyError as exc:
            raise BadBundle(f"the history of {commit[:12]} lacks object {exc}") from None
    history = {p.oid: p.size for p in found.values() if p is not None}
    return tip, history


def _walk_tree(
    repo: Repo, tree_id: bytes, seen: set[bytes], found: dict[bytes, LfsPointer | None]
) -> dict[str, int]:
    """The pointers under a tree that no tree in `seen` held; `seen` and `found` grow."""
    pointers: dict[str, int] = {}
    todo = [tree_id]
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        tree = repo[sha]
        if not isinstance(tree, Tree):
            raise BadBundle(f"{sha.decode()} is not a tree")
        for item in tree.iteritems():
            if stat.S_ISDIR(item.mode):
                todo.append(item.sha)
            elif stat.S_ISREG(item.mode) and item.sha not in found:
                pointer = found[item.sha] = _pointer(repo, item.sha)
                if pointer is not None:
                    pointers[pointer.oid] = pointer.size
    return pointers


def _pointer(repo: Repo, sha: bytes) -> LfsPointer | None:
    if ObjectID(sha) not in repo.object_store:
        raise KeyError(sha.decode())
    if object_size(repo, sha) > LFS_POINTER_MAX:
        return None
    return parse_pointer(repo[sha].as_raw_string())

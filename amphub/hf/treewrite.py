"""A Hub commit written as an ordinary git commit (blocking: run on git threads).

The commit is built on the branch's head under the repository's lock, the lock a push
takes, and the branch is moved only from the head it was built on. Files that go to LFS
and that .gitattributes does not route there are added to it, so a clone with git-lfs
checks out their content, not their pointers.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Literal, cast, overload

from dulwich.attrs import compile_gitattributes_patterns, match_path, parse_git_attributes
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from amphub.errors import BadRequest, Conflict, PreconditionFailed
from amphub.hf.repo import HUB_DEFAULT_BRANCH, default_branch
from amphub.services.push import ZERO, RefUpdate
from amphub.storage.repo_files import LfsPointer, PathNotFound, RevisionNotFound, read_as
from amphub.storage.repos import DEFAULT_BRANCH

FILE_MODE = 0o100644
EXECUTABLE_MODE = 0o100755
FOLDER_MODE = 0o040000
ATTRIBUTES = ".gitattributes"
LFS_ATTRIBUTES = b"filter=lfs diff=lfs merge=lfs -text"
_GLOB_SPECIAL = set("*?[]\\!#")


@dataclass(frozen=True)
class Addition:
    """A file to add or replace: its bytes, or the LFS object it points at."""

    path: str
    data: bytes = b""
    lfs: LfsPointer | None = None


@dataclass(frozen=True)
class Deletion:
    """A file or a folder (with everything in it) to delete."""

    path: str
    folder: bool


@dataclass
class CommitPlan:
    """What a Hub commit asks for, in order."""

    summary: str
    description: str = ""
    parent: str | None = None
    operations: list[Addition | Deletion] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The git commit message: the summary, then the description."""
        body = f"\n\n{self.description.strip()}" if self.description.strip() else ""
        return f"{self.summary.strip()}{body}\n"


def pointer_bytes(pointer: LfsPointer) -> bytes:
    """The LFS pointer file of an object, as git-lfs writes it."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{pointer.oid}\n"
        f"size {pointer.size}\n"
    ).encode()


def attribute_pattern(path: str) -> bytes:
    """A .gitattributes pattern that matches exactly this path from the repository's root."""
    escaped = "".join(
        "[[:space:]]" if ch.isspace() else "\\" + ch if ch in _GLOB_SPECIAL else ch for ch in path
    )
    return ("/" + escaped).encode()


class TreeEditor:
    """Changes to a commit's tree; `write` makes the new tree objects, sharing what is unchanged."""

    def __init__(self, repo: Repo, root: bytes) -> None:
        self._repo = repo
        self._folders: dict[tuple[str, ...], Tree] = {(): self._copy(root)}
        self._changed: set[tuple[str, ...]] = set()
        self._blobs: dict[bytes, Blob] = {}

    def _copy(self, sha: bytes) -> Tree:
        """A stored tree to edit; dulwich types `copy()` as returning any object."""
        return cast(Tree, read_as(self._repo, sha, Tree).copy())

    @overload
    def _folder(self, parts: tuple[str, ...], create: Literal[True]) -> Tree: ...

    @overload
    def _folder(self, parts: tuple[str, ...], create: bool) -> Tree | None: ...

    def _folder(self, parts: tuple[str, ...], create: bool) -> Tree | None:
        """The folder at `parts`, to edit; None if it is not there and not to be created."""
        if parts in self._folders:
            return self._folders[parts]
        parent = self._folder(parts[:-1], create)
        if parent is None:
            return None
        name = parts[-1].encode()
        if name in parent:
            mode, sha = parent[name]
            if not stat.S_ISDIR(mode):
                if create:
                    raise BadRequest(f"{'/'.join(parts)} is a file, not a folder")
                return None
            folder = self._copy(sha)
        elif create:
            folder = Tree()
        else:
            return None
        self._folders[parts] = folder
        return folder

    def _touch(self, parts: tuple[str, ...]) -> None:
        for depth in range(len(parts) + 1):
            self._changed.add(parts[:depth])

    def add(self, path: str, data: bytes) -> None:
        """Add a file or replace one, keeping an executable file executable."""
        parts = tuple(path.split("/"))
        folder = self._folder(parts[:-1], create=True)
        name = parts[-1].encode()
        mode = FILE_MODE
        if name in folder:
            old_mode, _ = folder[name]
            if stat.S_ISDIR(old_mode):
                raise BadRequest(f"{path} is a folder; delete it before adding a file there")
            mode = EXECUTABLE_MODE if old_mode == EXECUTABLE_MODE else FILE_MODE
        blob = Blob.from_string(data)
        self._blobs[blob.id] = blob
        folder[name] = (mode, blob.id)
        self._touch(parts[:-1])

    def delete(self, path: str, is_folder: bool) -> None:
        """Delete a file, or a folder with everything in it."""
        parts = tuple(path.split("/"))
        parent = self._folder(parts[:-1], create=False)
        name = parts[-1].encode()
        if parent is None or name not in parent or stat.S_ISDIR(parent[name][0]) != is_folder:
            kind = "folder" if is_folder else "file"
            raise PathNotFound(f"A {kind} with this name doesn't exist: {path}")
        del parent[name]
        for cached in [p for p in self._folders if p[: len(parts)] == parts]:
            del self._folders[cached]
            self._changed.discard(cached)
        self._touch(parts[:-1])

    def read(self, path: str) -> bytes | None:
        """A file's bytes as the edited tree has them; None if there is no such file."""
        parts = tuple(path.split("/"))
        folder = self._folder(parts[:-1], create=False)
        name = parts[-1].encode()
        if folder is None or name not in folder or stat.S_ISDIR(folder[name][0]):
            return None
        sha = folder[name][1]
        blob = self._blobs.get(sha) or self._repo[sha]
        return blob.as_raw_string() if isinstance(blob, Blob) else None

    def write(self) -> tuple[bytes, list[ShaFile]]:
        """(root tree id, the new objects): changed folders written deepest first."""
        objects: list[ShaFile] = list(self._blobs.values())
        for parts in sorted(self._changed, key=len, reverse=True):
            folder = self._folders[parts]
            if parts:
                parent, name = self._folders[parts[:-1]], parts[-1].encode()
                if not len(folder):  # git keeps no empty folders
                    if name in parent:
                        del parent[name]
                    continue
                parent[name] = (FOLDER_MODE, folder.id)
            objects.append(folder)
        return self._folders[()].id, objects


def lfs_routing(attributes: bytes) -> Callable[[str], bool]:
    """Whether a .gitattributes routes a path to LFS (its `filter=lfs`)."""
    patterns = compile_gitattributes_patterns(parse_git_attributes(BytesIO(attributes)))
    return lambda path: match_path(patterns, path.encode()).get(b"filter") == b"lfs"


def route_to_lfs(editor: TreeEditor, paths: list[str]) -> None:
    """Add to .gitattributes the LFS files it does not route to LFS already."""
    current = editor.read(ATTRIBUTES) or b""
    routed = lfs_routing(current)
    missing = [path for path in paths if not routed(path)]
    if not missing:
        return
    lines = b"".join(attribute_pattern(p) + b" " + LFS_ATTRIBUTES + b"\n" for p in missing)
    separator = b"\n" if current and not current.endswith(b"\n") else b""
    editor.add(ATTRIBUTES, current + separator + lines)


def branch_ref(repo: Repo, rev: str) -> Ref:
    """The branch a commit goes to; `main` is master unless the model has a main."""
    names = [rev, default_branch()] if rev == HUB_DEFAULT_BRANCH else [rev]
    for name in names:
        ref = Ref(b"refs/heads/" + name.encode())
        if check_ref_format(ref) and ref in repo.refs:
            return ref
    raise RevisionNotFound(f"no branch {rev}: a commit goes to a branch (create_branch)")


def _apply(editor: TreeEditor, plan: CommitPlan) -> None:
    lfs_paths = []
    for operation in plan.operations:
        if isinstance(operation, Deletion):
            editor.delete(operation.path, operation.folder)
        elif operation.lfs:
            editor.add(operation.path, pointer_bytes(operation.lfs))
            lfs_paths.append(operation.path)
        else:
            editor.add(operation.path, operation.data)
    route_to_lfs(editor, list(dict.fromkeys(lfs_paths)))


def write_commit(
    path: Path,
    lock: AbstractContextManager[object],
    rev: str,
    plan: CommitPlan,
    author: bytes,
    when: int,
) -> RefUpdate:
    """Commit the plan on a branch's head and move the branch; the ref update made."""
    with lock, Repo(str(path)) as repo:
        ref = branch_ref(repo, rev)
        head = repo.refs[ref]
        if plan.parent and not head.decode().startswith(plan.parent):
            raise PreconditionFailed(
                f"the branch moved on since {plan.parent}: it is at {head.decode()} now;"
                " fetch and commit again"
            )
        commit = _commit_on(repo, head, plan, author, when)
        if not repo.refs.set_if_equals(ref, head, commit.id):
            raise Conflict("the branch was moved by another push; commit again")
        return RefUpdate(ref, head, commit.id)


def write_tagged_commit(
    path: Path,
    lock: AbstractContextManager[object],
    tag: bytes,
    base: str,
    plan: CommitPlan,
    author: bytes,
    when: int,
) -> RefUpdate:
    """Commit the plan on top of the commit `base` and make a new tag of it; the ref update."""
    if not check_ref_format(Ref(tag)):
        raise BadRequest(f"invalid name {tag.decode(errors='replace')}")
    with lock, Repo(str(path)) as repo:
        commit = _commit_on(repo, ObjectID(base.encode()), plan, author, when)
        if not repo.refs.add_if_new(Ref(tag), commit.id):
            raise Conflict(f"{tag.decode()} exists already")
        return RefUpdate(tag, ZERO, commit.id)


def _commit_on(repo: Repo, head: ObjectID, plan: CommitPlan, author: bytes, when: int) -> Commit:
    """The plan's commit with `head` as its parent, stored (no ref points at it yet)."""
    editor = TreeEditor(repo, read_as(repo, head, Commit).tree)
    _apply(editor, plan)
    tree_id, objects = editor.write()
    commit = Commit()
    commit.tree = tree_id
    commit.parents = [head]
    commit.author = commit.committer = author
    commit.author_time = commit.commit_time = when
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = plan.message.encode()
    repo.object_store.add_objects([(obj, None) for obj in [*objects, commit]])
    return commit


def create_ref(
    path: Path,
    lock: AbstractContextManager[object],
    ref: bytes,
    target: bytes,
    tagger: bytes,
    when: int,
    message: str,
) -> RefUpdate:
    """Create a branch or tag at a commit (an annotated tag when there is a message)."""
    if not check_ref_format(Ref(ref)):
        raise BadRequest(f"invalid name {ref.decode(errors='replace')}")
    with lock, Repo(str(path)) as repo:
        value = ObjectID(target)
        if message:
            tag = Tag()
            tag.name = ref.removeprefix(b"refs/tags/")
            tag.object = (Commit, target)
            tag.tagger = tagger
            tag.tag_time = when
            tag.tag_timezone = 0
            tag.message = message.encode() + b"\n"
            repo.object_store.add_object(tag)
            value = tag.id
        if not repo.refs.add_if_new(Ref(ref), value):
            raise Conflict(f"{ref.decode()} exists already")
        return RefUpdate(ref, ZERO, value)


def delete_ref(
    path: Path, lock: AbstractContextManager[object], ref: bytes, kind: str
) -> RefUpdate:
    """Delete a branch or tag; never the default branch (nor `main` where it names it)."""
    name = ref.decode(errors="replace").split("/", 2)[-1]
    with lock, Repo(str(path)) as repo:
        old = repo.refs.read_ref(Ref(ref)) if check_ref_format(Ref(ref)) else None
        if ref == DEFAULT_BRANCH or (
            name == HUB_DEFAULT_BRANCH and kind == "branch" and old is None
        ):
            raise BadRequest(
                f"{default_branch()} is the model's default branch and cannot be deleted"
            )
        if old is None:
            raise RevisionNotFound(f"no {kind} {name}")
        if not repo.refs.remove_if_equals(Ref(ref), ObjectID(old)):
            raise Conflict(f"{kind} {name} was changed meanwhile; try again")
        return RefUpdate(ref, old, ZERO)

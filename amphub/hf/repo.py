"""Reading a model's repository the way the Hub's API shows it (blocking: run on git threads).

Revisions are resolved once, by `resolve_revision`, and everything else reads at that
commit, so one answer never mixes two states of a branch.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dulwich.errors import NotTreeError
from dulwich.objects import Blob, Commit, SubmoduleEncountered, Tree
from dulwich.repo import Repo

from amphub.clock import rfc3339
from amphub.storage.git_objects import BlobReader, object_size
from amphub.storage.last_changes import last_changes
from amphub.storage.repo_files import (
    LFS_POINTER_MAX,
    LfsPointer,
    PathNotFound,
    RevisionNotFound,
    find_commit,
    parse_pointer,
    read_as,
)
from amphub.storage.repos import DEFAULT_BRANCH

# The Hub's default branch; amphub's is master, which `main` names unless a model has a main.
HUB_DEFAULT_BRANCH = "main"
SUBMODULE = 0o160000
FULL_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubEntry:
    """A file or folder of a revision, with what the Hub's tree listing shows of it."""

    path: str
    type: str  # "file" or "directory"
    oid: str  # the git blob or tree id
    size: int  # a file's real size (its LFS content's for an LFS file); 0 for a folder
    lfs: LfsPointer | None = None
    pointer_size: int | None = None  # the size of the pointer blob of an LFS file


@dataclass(frozen=True)
class CommitSummary:
    """The last commit that changed a path."""

    id: str
    title: str
    date: str


def default_branch() -> str:
    """The name of amphub's default branch (master)."""
    return DEFAULT_BRANCH.decode().removeprefix("refs/heads/")


def resolve_revision(path: Path, rev: str) -> str:
    """The commit id a branch, tag or commit names; `main` means master if there is no main."""
    with Repo(str(path)) as repo:
        try:
            return find_commit(repo, rev).id.decode()
        except RevisionNotFound:
            if rev != HUB_DEFAULT_BRANCH:
                raise
            return find_commit(repo, default_branch()).id.decode()


def shown_commit(rev: str, commit_id: str) -> str:
    """The commit id an answer names for a revision: a full commit id is named as asked.

    A mirror's commit of an upstream commit has an id of its own and is found by the
    upstream's (the tag mirror/<id>); huggingface_hub keeps what it asked for by a commit
    id under that id, so the answers must name that one.
    """
    return rev if FULL_COMMIT_ID.fullmatch(rev) else commit_id


def _object_at(repo: Repo, commit_id: str, path: str) -> tuple[int, bytes]:
    """(mode, object id) of a path in a commit; the root folder for an empty path."""
    tree_id = read_as(repo, commit_id.encode(), Commit).tree
    if not path.strip("/"):
        return stat.S_IFDIR, tree_id
    try:
        return read_as(repo, tree_id, Tree).lookup_path(repo.__getitem__, path.strip("/").encode())
    except (KeyError, ValueError, NotTreeError, SubmoduleEncountered) as exc:
        raise PathNotFound(f"no {path} in this revision") from exc


def _entry(repo: Repo, name: str, mode: int, oid: bytes) -> HubEntry:
    if stat.S_ISDIR(mode):
        return HubEntry(name, "directory", oid.decode(), 0)
    size = object_size(repo, oid)
    pointer = parse_pointer(repo[oid].as_raw_string()) if size <= LFS_POINTER_MAX else None
    if pointer:
        return HubEntry(name, "file", oid.decode(), pointer.size, pointer, size)
    return HubEntry(name, "file", oid.decode(), size)


def list_entries(path: Path, commit_id: str, folder: str, recursive: bool) -> list[HubEntry]:
    """The files and folders in a folder (and below it, if `recursive`), by path."""
    with Repo(str(path)) as repo:
        mode, tree_id = _object_at(repo, commit_id, folder)
        if not stat.S_ISDIR(mode):
            raise PathNotFound(f"{folder} is a file, not a folder")
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        pending = [(prefix, read_as(repo, tree_id, Tree))]
        entries = []
        while pending:
            prefix, tree = pending.pop()
            for item in tree.iteritems():
                if item.mode == SUBMODULE:
                    continue  # no content in this repository
                name = prefix + item.path.decode(errors="replace")
                entries.append(_entry(repo, name, item.mode, item.sha))
                if recursive and stat.S_ISDIR(item.mode):
                    pending.append((name + "/", read_as(repo, item.sha, Tree)))
        return sorted(entries, key=lambda entry: entry.path)


def path_entries(path: Path, commit_id: str, paths: list[str]) -> list[HubEntry]:
    """The entries at the given paths; paths that are not in the revision are left out."""
    with Repo(str(path)) as repo:
        found = []
        for name in dict.fromkeys(p.strip("/") for p in paths):
            try:
                mode, oid = _object_at(repo, commit_id, name)
            except PathNotFound:
                continue
            if name and mode != SUBMODULE:
                found.append(_entry(repo, name, mode, oid))
        return found


def read_file(path: Path, commit_id: str, file: str) -> tuple[str, bytes]:
    """(blob id, bytes as stored in git) of a file; an LFS file gives its pointer."""
    with Repo(str(path)) as repo:
        _, oid = _object_at(repo, commit_id, file)
        blob = repo[oid]
        if not isinstance(blob, Blob):
            raise PathNotFound(f"{file} is a folder, not a file")
        return oid.decode(), blob.as_raw_string()


def open_file(path: Path, commit_id: str, file: str) -> tuple[str, BlobReader]:
    """(blob id, a reader of its bytes as stored in git) of a file; LFS files give their pointer."""
    with Repo(str(path)) as repo:
        mode, oid = _object_at(repo, commit_id, file)
        if stat.S_ISDIR(mode):
            raise PathNotFound(f"{file} is a folder, not a file")
        return oid.decode(), BlobReader(repo, oid)


def read_optional(path: Path, commit_id: str, file: str) -> bytes:
    """A file's bytes, or b"" when the revision has no such file."""
    try:
        return read_file(path, commit_id, file)[1]
    except PathNotFound:
        return b""


def last_commits(path: Path, commit_id: str, paths: list[str]) -> dict[str, CommitSummary]:
    """For each path, the commit `git log -1 commit_id -- path` names (one walk a folder)."""
    folders: dict[str, list[str]] = {}
    for name in paths:
        folder, _, base = name.rpartition("/")
        folders.setdefault(folder, []).append(base)
    found = {}
    for folder, names in folders.items():
        try:
            changes = last_changes(path, commit_id, folder, names)
        except PathNotFound:
            continue
        for name, commit in changes.items():
            found[f"{folder}/{name}".lstrip("/")] = CommitSummary(
                commit.id,
                commit.message.strip().split("\n", 1)[0],
                rfc3339(datetime.fromtimestamp(commit.committed_at, UTC)),
            )
    return found

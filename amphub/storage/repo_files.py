"""Reading a model's files at any branch, tag or commit, its refs and history (blocking)."""

from __future__ import annotations

import re
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dulwich.diff_tree import CHANGE_ADD, CHANGE_RENAME, TreeChange
from dulwich.graph import can_fast_forward
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo
from dulwich.walk import WalkEntry

from amphub.storage.git_objects import BlobReader
from amphub.storage.renames import changes_with_renames

LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1\n"
LFS_POINTER_MAX = 1024
# git's own test for binary content: a NUL byte in the first 8000 bytes.
BINARY_PROBE = 8000
GITLINK_MODE = 0o160000
# Commits searched, newest first, for a short commit id.
SHORT_ID_WALK = 10_000
# A mirror's commit of an upstream commit (its own id differs) is the tag mirror/<upstream id>.
MIRROR_TAGS = "mirror/"
# Commits a file's history reads for one page, newest first.
FILE_HISTORY_WALK = 10_000

_Object = TypeVar("_Object", bound=ShaFile)


class RevisionNotFound(LookupError):
    """No branch, tag or commit by that name."""


class PathNotFound(LookupError):
    """No file or folder at that path in the revision."""


@dataclass(frozen=True)
class LfsPointer:
    """Where a file's real content lives in the LFS store."""

    oid: str
    size: int


@dataclass(frozen=True)
class Entry:
    """One file or folder of a tree."""

    path: str
    type: str  # "file" or "directory"
    size: int | None
    lfs: LfsPointer | None = None
    binary: bool | None = None
    sha: str | None = None

    @property
    def content_id(self) -> str | None:
        """What a file's content is known by: its LFS oid, else its git blob id."""
        return self.lfs.oid if self.lfs else self.sha


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The LFS pointer a blob holds, if it is one."""
    if len(data) > LFS_POINTER_MAX or not data.startswith(LFS_POINTER_START):
        return None
    oid = re.search(rb"^oid sha256:([0-9a-f]{64})$", data, re.MULTILINE)
    size = re.search(rb"^size (\d+)$", data, re.MULTILINE)
    if not oid or not size:
        return None
    return LfsPointer(oid.group(1).decode(), int(size.group(1)))


def _named_refs(rev: str) -> list[Ref]:
    """The branch and tag `rev` may name; none if it is not a valid ref name (say `../x`)."""
    candidates = [Ref(b"refs/heads/" + rev.encode()), Ref(b"refs/tags/" + rev.encode())]
    return [ref for ref in candidates if check_ref_format(ref)]


def find_commit(repo: Repo, rev: str) -> Commit:
    """The commit a branch, tag, commit id or short commit id names in an open repository."""
    for ref in _named_refs(rev):
        if ref in repo.refs:
            obj = repo[repo.refs[ref]]
            while isinstance(obj, Tag):
                obj = repo[obj.object[1]]
            if isinstance(obj, Commit):
                return obj
    if re.fullmatch(r"[0-9a-f]{40}", rev) and ObjectID(rev.encode()) in repo.object_store:
        obj = repo[rev.encode()]
        if isinstance(obj, Commit) and _reachable(repo, obj.id):
            return obj
    if (
        re.fullmatch(r"[0-9a-f]{40}", rev)
        and Ref(f"refs/tags/{MIRROR_TAGS}{rev}".encode()) in repo.refs
    ):
        return find_commit(repo, MIRROR_TAGS + rev)
    if re.fullmatch(r"[0-9a-f]{4,39}", rev):
        return _by_short_id(repo, rev)
    raise RevisionNotFound(f"no branch, tag or commit {rev}")


def _tips(repo: Repo) -> list[ObjectID]:
    """The commits the branches and tags point at."""
    tips = []
    for ref in repo.refs.allkeys():
        if ref.startswith((b"refs/heads/", b"refs/tags/")):
            tip = repo.get_peeled(ref)
            if isinstance(repo[tip], Commit):
                tips.append(tip)
    return tips


def _by_short_id(repo: Repo, prefix: str) -> Commit:
    """The one commit a branch or tag holds whose id begins with `prefix` (as git abbreviates).

    Only the newest SHORT_ID_WALK commits are looked at, so a paste costs a bounded walk.
    """
    found: dict[bytes, Commit] = {}
    walker = repo.get_walker(include=_tips(repo), max_entries=SHORT_ID_WALK)
    for entry in walker:
        if entry.commit.id.startswith(prefix.encode()):
            found[entry.commit.id] = entry.commit
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        raise RevisionNotFound(f"{prefix} is the beginning of several commits; give more of it")
    raise RevisionNotFound(f"no branch, tag or commit {prefix}")


def _reachable(repo: Repo, commit_id: ObjectID) -> bool:
    """Whether a branch or tag holds the commit: what a deleted branch left is not served."""
    tips = _tips(repo)
    if commit_id in tips:
        return True
    # Newest first, so a recent commit is found after a short walk.
    return any(entry.commit.id == commit_id for entry in repo.get_walker(include=tips))


def is_ancestor(path: Path, ancestor: str, commit: str) -> bool:
    """Whether moving a branch from `ancestor` to `commit` keeps every commit it held."""
    with Repo(str(path)) as repo:
        try:
            return can_fast_forward(repo, ObjectID(ancestor.encode()), ObjectID(commit.encode()))
        except (KeyError, AssertionError):  # not both commits of this repository
            return False


def read_as(repo: Repo, sha: bytes, kind: type[_Object]) -> _Object:
    """The object `sha`, which the tree or commit that names it says is a `kind`."""
    obj = repo[sha]
    if not isinstance(obj, kind):
        raise ValueError(f"object {sha.decode()} is not a {kind.__name__}")
    return obj


def _folder(repo: Repo, tree_id: bytes, path: str) -> Tree:
    """The tree of a folder, found without reading any file on the way."""
    tree = read_as(repo, tree_id, Tree)
    for part in [p.encode() for p in path.split("/") if p]:
        if part not in tree:
            raise PathNotFound(f"no {path} in this revision")
        mode, sha = tree[part]
        if not stat.S_ISDIR(mode):
            raise PathNotFound(f"{path} is a file, not a folder")
        tree = read_as(repo, sha, Tree)
    return tree


def _lookup_id(repo: Repo, tree_id: bytes, file: str) -> bytes:
    """The blob id of a file, read from its folders' trees alone."""
    parts = [p.encode() for p in file.split("/") if p]
    tree = read_as(repo, tree_id, Tree)
    for i, part in enumerate(parts):
        if part not in tree:
            break
        mode, sha = tree[part]
        if i == len(parts) - 1:
            if stat.S_ISDIR(mode) or mode == GITLINK_MODE:
                raise PathNotFound(f"{file} is a folder, not a file")
            return sha
        if not stat.S_ISDIR(mode):
            break
        tree = read_as(repo, sha, Tree)
    raise PathNotFound(f"no {file} in this revision")


def resolve(path: Path, rev: str) -> str:
    """The commit id a branch, tag or commit names."""
    with Repo(str(path)) as repo:
        return find_commit(repo, rev).id.decode()


def qualify(path: Path, rev: str) -> tuple[str, str] | None:
    """(full ref name, the object it points at) of a branch or tag; None otherwise."""
    with Repo(str(path)) as repo:
        for ref in _named_refs(rev):
            if ref in repo.refs:
                return ref.decode(), repo.refs[ref].decode()
        return None


def list_tree(
    path: Path, rev: str, folder: str, start: int = 0, count: int | None = None
) -> tuple[int, list[Entry]]:
    """(how many entries, a page of them) of a folder: folders first, then files by name.

    LFS pointers are reported with their real size. Only the page's files are read, so a
    page of a folder with ten thousand files costs no more than the page.
    """
    with Repo(str(path)) as repo:
        tree = _folder(repo, find_commit(repo, rev).tree, folder)
        # A gitlink (submodule) names a commit of another repository: nothing to list here.
        items = [item for item in tree.iteritems() if item.mode != GITLINK_MODE]
        items.sort(key=lambda item: (not stat.S_ISDIR(item.mode), item.path))
        end = None if count is None else start + count
        entries = []
        for item in items[start:end]:
            name = f"{folder.strip('/')}/{item.path.decode()}".lstrip("/")
            if stat.S_ISDIR(item.mode):
                entries.append(Entry(name, "directory", None))
            else:
                entries.append(_file_entry(repo, name, item.sha))
        return len(items), entries


def file_entry(path: Path, rev: str, file: str) -> Entry:
    """One file of a revision, as its folder lists it."""
    with Repo(str(path)) as repo:
        blob_id = _lookup_id(repo, find_commit(repo, rev).tree, file)
        return _file_entry(repo, file.strip("/"), blob_id)


def _file_entry(repo: Repo, name: str, blob_id: bytes) -> Entry:
    """A file's entry from its size and first bytes: the blob is never read whole."""
    reader = BlobReader(repo, blob_id)
    try:
        head = reader.peek(BINARY_PROBE)
    finally:
        reader.close()
    sha = blob_id.decode()
    pointer = parse_pointer(head) if reader.size <= LFS_POINTER_MAX else None
    if pointer:
        return Entry(name, "file", pointer.size, pointer, None, sha)
    return Entry(name, "file", reader.size, None, b"\0" in head, sha)


def walk_files(path: Path, rev: str) -> tuple[str, list[Entry]]:
    """(commit id, every file of the revision, recursively)."""
    with Repo(str(path)) as repo:
        commit = find_commit(repo, rev)
        files: list[Entry] = []
        pending = [("", read_as(repo, commit.tree, Tree))]
        while pending:
            prefix, tree = pending.pop()
            for item in tree.iteritems():
                if item.mode == 0o160000:
                    continue  # a submodule: no content here
                name = prefix + item.path.decode(errors="replace")
                if stat.S_ISDIR(item.mode):
                    pending.append((name + "/", read_as(repo, item.sha, Tree)))
                else:
                    files.append(_file_entry(repo, name, item.sha))
        return commit.id.decode(), sorted(files, key=lambda e: e.path)


@dataclass(frozen=True)
class EarlierVersions:
    """The earlier contents of files, found by one walk of a commit's history."""

    commits: int  # commits read by the walk
    # file -> (commit id, blob id, its path there: an older name before a rename), newest first
    versions: dict[str, list[tuple[str, str, str]]]


def earlier_versions(
    path: Path, commit_id: str, files: Collection[str], limit: int
) -> EarlierVersions:
    """(commit id, blob id, path) of the earlier contents of each file, at most `limit` each.

    One walk of the history serves every file. A commit counts for a file where a walk
    limited to that file (`git log --full-history -- file`) lists it: the file, or a folder
    of that name, changed in it. A file that a commit renamed is followed to its earlier
    name, as `git log --follow` does. Each content is listed once, at the newest commit
    that has it; the walk ends early once every file has its `limit`.
    """
    with Repo(str(path)) as repo:
        found: dict[bytes, list[tuple[bytes, bytes, bytes]]] = {f.encode(): [] for f in files}
        pending = set(found)  # files with fewer than limit + 1 contents so far
        names = {name: name for name in found}  # a path in the history -> the file now
        commits = 0
        for entry in repo.get_walker(include=[ObjectID(commit_id.encode())]):
            if not pending:
                break
            commits += 1
            wanted = {old for old, name in names.items() if name in pending}
            for old, blob_id in _changed_files(repo, entry, wanted).items():
                name = names[old]
                versions = found[name]
                if all(blob_id != seen for _, seen, _ in versions):
                    versions.append((entry.commit.id, blob_id, old))
                if len(versions) > limit:
                    pending.discard(name)
            _follow_renames(repo, entry, names, wanted)
        # The first content of each file is the one in the commit itself.
        return EarlierVersions(
            commits,
            {
                name.decode(): [(c.decode(), b.decode(), p.decode()) for c, b, p in versions[1:]]
                for name, versions in found.items()
            },
        )


def _changed_files(repo: Repo, entry: WalkEntry, wanted: set[bytes]) -> dict[bytes, bytes]:
    """The blob ids, in the entry's commit, of the wanted files that it changed."""
    changed = {}
    for name, blob_id in _touched(entry, wanted).items():
        if blob_id is None:
            try:
                blob_id = _lookup_id(repo, entry.commit.tree, name.decode())
            except PathNotFound:  # deleted by this commit, or a folder now
                continue
        changed[name] = blob_id
    return changed


def _touched(entry: WalkEntry, wanted: set[bytes]) -> dict[bytes, bytes | None]:
    """The wanted paths the entry's commit changed, added or deleted, each with its blob id.

    A folder of a wanted name counts too. The id is None where the diff does not give it.
    """
    blobs: dict[bytes, bytes | None] = {}  # None: no file there, or not known from the diff
    for change in _flat_changes(entry.changes()):
        for side in (change.old, change.new):
            if side is None or side.path is None:
                continue
            parts = side.path.split(b"/")
            for depth in range(1, len(parts) + 1):  # a folder's change matches its name too
                name = b"/".join(parts[:depth])
                if name in wanted:
                    blobs.setdefault(name, None)
        new = change.new
        if new is not None and new.path in wanted and new.mode != GITLINK_MODE:
            assert new.sha is not None  # a diff's side with a path has an id
            blobs[new.path] = new.sha
    return blobs


def _follow_renames(
    repo: Repo, entry: WalkEntry, names: dict[bytes, bytes], wanted: set[bytes]
) -> None:
    """Where the entry's commit renamed a wanted file, its older commits know it by the old name.

    Renames are looked for only in a commit with one parent that added a wanted path.
    """
    commit = entry.commit
    changes = entry.changes()
    if len(commit.parents) != 1 or not any(
        isinstance(c, TreeChange) and c.type == CHANGE_ADD and c.new and c.new.path in wanted
        for c in changes
    ):
        return
    parent = read_as(repo, commit.parents[0], Commit)
    for change in changes_with_renames(repo, parent.tree, commit.tree):
        old, new = change.old, change.new
        if change.type != CHANGE_RENAME or old is None or new is None:
            continue
        if new.path in wanted and old.path is not None and old.path not in names:
            names[old.path] = names.pop(new.path)


def _flat_changes(changes: list[TreeChange] | list[list[TreeChange | None]]) -> list[TreeChange]:
    """A commit's changes; those of a merge come as one list per path that changed."""
    flat: list[TreeChange] = []
    for change in changes:
        if isinstance(change, list):
            flat.extend(c for c in change if c is not None)
        else:
            flat.append(change)
    return flat


def read_object(path: Path, sha: str) -> bytes:
    """A blob's bytes by id."""
    with Repo(str(path)) as repo:
        blob = repo[sha.encode()]
        if not isinstance(blob, Blob):
            raise PathNotFound(f"{sha} is not a file")
        return blob.as_raw_string()


def open_blob(path: Path, rev: str, file: str) -> BlobReader:
    """A file's bytes as stored in git (an LFS file gives its pointer), to read in chunks."""
    with Repo(str(path)) as repo:
        blob_id = _lookup_id(repo, find_commit(repo, rev).tree, file)
        return BlobReader(repo, blob_id)


def list_refs(path: Path) -> dict[str, list[dict[str, str]]]:
    """Branches and tags with the commits they point at."""
    with Repo(str(path)) as repo:
        found: dict[str, list[dict[str, str]]] = {"branches": [], "tags": []}
        for ref, sha in sorted(repo.get_refs().items()):
            for prefix, kind in ((b"refs/heads/", "branches"), (b"refs/tags/", "tags")):
                if ref.startswith(prefix):
                    commit = repo.get_peeled(ref) or sha
                    found[kind].append(
                        {"name": ref[len(prefix) :].decode(), "commit": commit.decode()}
                    )
        return found


@dataclass(frozen=True)
class CommitInfo:
    """One commit as a history listing shows it; times are Unix seconds."""

    id: str
    parents: tuple[str, ...]
    author: str
    authored_at: int
    committer: str
    committed_at: int
    message: str


def list_commits(path: Path, rev: str, skip: int, limit: int) -> list[CommitInfo]:
    """The history of a revision, newest first: `limit` commits after the first `skip`."""
    with Repo(str(path)) as repo:
        start = find_commit(repo, rev)
        walker = repo.get_walker(include=[start.id], max_entries=skip + limit)
        return [commit_info(entry.commit) for entry in list(walker)[skip:]]


def file_history(path: Path, rev: str, file: str, skip: int, limit: int) -> list[CommitInfo]:
    """The commits that changed a file, newest first, `limit` after the first `skip`.

    A commit counts where `earlier_versions` counts it, or where it deleted the file, as
    `git log -- file` lists it; renames are followed (`git log --follow`). The walk reads
    at most `FILE_HISTORY_WALK` commits.
    """
    with Repo(str(path)) as repo:
        start = find_commit(repo, rev)
        names = {file.encode(): file.encode()}
        found: list[CommitInfo] = []
        for entry in repo.get_walker(include=[start.id], max_entries=FILE_HISTORY_WALK):
            wanted = set(names)
            if _touched(entry, wanted):
                found.append(commit_info(entry.commit))
                if len(found) >= skip + limit:
                    break
            _follow_renames(repo, entry, names, wanted)
        return found[skip:]


def commit_info(commit: Commit) -> CommitInfo:
    """A commit as listings show it."""
    return CommitInfo(
        id=commit.id.decode(),
        parents=tuple(parent.decode() for parent in commit.parents),
        author=commit.author.decode(errors="replace"),
        authored_at=commit.author_time,
        committer=commit.committer.decode(errors="replace"),
        committed_at=commit.commit_time,
        message=commit.message.decode(errors="replace"),
    )

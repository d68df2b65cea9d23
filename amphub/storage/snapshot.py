"""Copying a data dir's files while the server writes them: for `amphub backup` and `restore`.

Packs, their indexes, loose objects, LFS objects and Xet xorbs never change once they
have their name (they are written under another name and renamed into place), so they
are hard-linked where the file system allows and copied where it does not. Every other
file (refs, config, the database) may be rewritten in place by a server using the copy,
so it is copied byte for byte. A file that vanishes while it is copied is counted, not an
error: objects leave the disk only when pruning repacks them or no model links them.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dulwich.repo import Repo

from amphub.storage.repos import PACK_CACHE_DIR, is_scratch

# The files of a repository that say where its branches and tags are.
REF_FILES = ("HEAD", "packed-refs")
REFS_DIR = "refs"
LOOSE_OBJECT = re.compile(r"[0-9a-f]{38}")
IMMUTABLE_PACK_SUFFIXES = (".pack", ".idx")


@dataclass
class Copied:
    """What a copy did so far."""

    files: int = 0
    linked: int = 0
    bytes: int = 0
    vanished: int = 0


class Copier:
    """Copies files, hard-linking those that never change, and counts what it did."""

    def __init__(self) -> None:
        self.copied = Copied()
        self._may_link = True  # until the target's file system refuses a link

    def share(self, source: Path, target: Path) -> bool:
        """Hard-link a file that never changes, or copy it; False if it vanished."""
        if target.exists():
            return True  # kept by an earlier pass over the same repository
        if self._may_link:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except FileNotFoundError:
                self.copied.vanished += 1
                return False
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                self._may_link = exc.errno == errno.EMLINK  # only that file has too many
            else:
                self._count(target, linked=True)
                return True
        return self.copy(source, target)

    def copy(self, source: Path, target: Path) -> bool:
        """Copy a file byte for byte, with its mode; False if it vanished."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(source, target, follow_symlinks=False)
        except FileNotFoundError:
            self.copied.vanished += 1
            return False
        self._count(target, linked=False)
        return True

    def _count(self, target: Path, *, linked: bool) -> None:
        self.copied.files += 1
        self.copied.linked += linked
        self.copied.bytes += target.stat().st_size


def never_changes(parts: tuple[str, ...]) -> bool:
    """Whether a file of a data dir (its path's parts) keeps its bytes while it has its name."""
    if parts[:2] == ("lfs", "objects"):
        return True
    return len(parts) > 3 and parts[0] == "repos" and _never_changes_in_repo(parts[3:])


def _never_changes_in_repo(parts: tuple[str, ...]) -> bool:
    if parts[0] == "xet":
        return True
    if parts[0] != "objects" or len(parts) != 3:
        return False
    folder, name = parts[1], parts[2]
    if folder == "pack":
        return name.startswith("pack-") and name.endswith(IMMUTABLE_PACK_SUFFIXES)
    return len(folder) == 2 and LOOSE_OBJECT.fullmatch(name) is not None


def capture_refs(source: Path, target: Path, copier: Copier) -> bool:
    """Copy where a repository's branches and tags are; False if the repository is gone."""
    if not (source / "HEAD").is_file():
        return False
    for name in REF_FILES:
        if (source / name).exists():
            copier.copy(source / name, target / name)
    for folder, _, files in os.walk(source / REFS_DIR):
        for name in files:
            if not is_scratch(name):
                path = Path(folder, name)
                copier.copy(path, target / path.relative_to(source))
    (target / REFS_DIR).mkdir(parents=True, exist_ok=True)
    return True


def copy_repository(source: Path, target: Path, copier: Copier) -> int:
    """Copy a repository's objects and other files, not its refs; how many files vanished.

    Scratch files of writes going on are left out, and so are packs not yet indexed: a
    push indexes its pack before it moves any ref. So are amphub's caches.
    """
    vanished = copier.copied.vanished
    (target / "objects").mkdir(parents=True, exist_ok=True)  # a repository even if all vanish
    for folder, subfolders, files in os.walk(source):
        here = Path(folder)
        if here == source:
            subfolders[:] = [s for s in subfolders if s not in (PACK_CACHE_DIR, REFS_DIR)]
            files = [name for name in files if name not in REF_FILES]
        for name in files:
            path = here / name
            parts = path.relative_to(source).parts
            if is_scratch(name) or _unindexed_pack(path):
                continue
            if _never_changes_in_repo(parts):
                copier.share(path, target / path.relative_to(source))
            else:
                copier.copy(path, target / path.relative_to(source))
        (target / here.relative_to(source)).mkdir(parents=True, exist_ok=True)
    return copier.copied.vanished - vanished


def _unindexed_pack(path: Path) -> bool:
    return path.suffix == ".pack" and not path.with_suffix(".idx").exists()


def missing_ref_targets(path: Path) -> list[str]:
    """The refs of a repository whose object it does not hold."""
    with Repo(str(path)) as repo:
        store = repo.object_store
        return [ref.decode() for ref, sha in repo.get_refs().items() if sha not in store]


def copy_lfs_objects(source: Path, target: Path, oids: list[str], copier: Copier) -> list[str]:
    """Share each LFS object of `oids` from one object folder to another; the oids not there."""
    missing = []
    for oid in oids:
        relative = Path(oid[:2], oid[2:4], oid)
        if not copier.share(source / relative, target / relative):
            missing.append(oid)
    return missing


def copy_data_dir(source: Path, target: Path, copier: Copier, leave_out: set[str]) -> None:
    """Copy a whole data dir that nothing writes (a backup), but the top-level `leave_out`."""
    for folder, _, files in os.walk(source):
        here = Path(folder)
        (target / here.relative_to(source)).mkdir(parents=True, exist_ok=True)
        for name in files:
            path = here / name
            parts = path.relative_to(source).parts
            if parts[0] in leave_out:
                continue
            if never_changes(parts):
                copier.share(path, target.joinpath(*parts))
            else:
                copier.copy(path, target.joinpath(*parts))

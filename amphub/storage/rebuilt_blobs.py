"""Large files stored in git as deltas, rebuilt once into plain files that reads stream.

A rebuild goes through files (a chain's whole object inflated to one, each delta applied
from one to the next): it holds no more than one delta's instructions in memory. With the
result kept, ten readers of a file cost one rebuild, not ten. The files live under the
repository's `amphub-cache/`, which its size does not count.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from amphub.storage.repos import PACK_CACHE_DIR

REBUILT_DIR = "blobs"
KEEP = 2
# A temporary file older than this was left by a crash.
STALE_TEMP_SECONDS = 3600


def rebuilt_dir(repo_path: Path) -> Path:
    """Where a repository's rebuilt files, and the scratch files of a rebuild, are kept."""
    return repo_path / PACK_CACHE_DIR / REBUILT_DIR


def open_rebuilt(repo_path: Path, sha: bytes, rebuild: Callable[[BinaryIO], None]) -> BinaryIO:
    """The blob's bytes as an open plain file, written by `rebuild` when not kept.

    One rebuild at a time per repository (a file lock, so across processes too); the file
    is opened before the lock is released, so pruning cannot take it from the reader.
    """
    root = rebuilt_dir(repo_path)
    root.mkdir(parents=True, exist_ok=True)
    target = root / sha.decode()
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            fd, temp = tempfile.mkstemp(dir=root, prefix="tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    rebuild(out)
                os.replace(temp, target)
            finally:
                if os.path.exists(temp):
                    os.unlink(temp)
            _prune(root)
        os.utime(target)  # recently read files are kept longest
        return open(target, "rb")  # noqa: SIM115 - the caller closes it


def _prune(root: Path) -> None:
    """Keep the most recently read files; drop temporary files a crash left."""
    prune_cache([p for p in root.iterdir() if len(p.name) == 40], KEEP, root.glob("tmp-*"))


def prune_cache(kept: Iterable[Path], keep: int, temps: Iterable[Path]) -> None:
    """Keep the `keep` newest of a cache's files; drop temporary ones untouched for an hour."""
    stale = time.time() - STALE_TEMP_SECONDS
    newest = sorted(kept, key=_mtime, reverse=True)
    for path in newest[keep:] + [temp for temp in temps if _mtime(temp) < stale]:
        path.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0

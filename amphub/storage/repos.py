"""Bare model repositories on disk: where they live and how a new one starts."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from dulwich.config import ConfigFile
from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from amphub.config import Config
from amphub.storage.repo_check import repository_problems
from amphub.storage.repo_locks import RepoLocks

DEFAULT_BRANCH = Ref(b"refs/heads/master")
README = b"README.md"
# Full-clone packs kept by amphub.git.upload; not part of the repository's size.
PACK_CACHE_DIR = "amphub-cache"
# In a repository: when (the hub clock's seconds) a push last left commits behind.
REWRITTEN_FILE = "amphub-rewritten"
# Xorbs of Xet uploads, kept in the repository folder until a shard names them.
XET_STAGING_DIR = "xet"

# The usual model file types, as Hugging Face Hub routes them to LFS.
LFS_PATTERNS = [
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gguf",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "saved_model/**/*",
    "*.tar",
    "*.tar.*",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
]

README_TEMPLATE = """\
---
Training framework: []
Job type:
  Type:
  Algorithm:
Industry:
Other tag: []
Number of parameters:
Open-source protocol:
Performance information: []
Training data: []
---
# {name}

Describe the model here: what it does, how it was trained and how to use it.
"""


def repo_path(config: Config, space_id: str, model_id: str) -> Path:
    """The bare repository of a model; the ids are validated, the result checked to stay put."""
    root = config.repos_dir.resolve()
    path = (root / space_id / f"{model_id}.git").resolve()
    if path.parent.parent != root:
        raise ValueError(f"repository path escapes the data dir: {space_id}/{model_id}")
    return path


def read_readme(path: Path) -> tuple[str | None, bytes]:
    """(master's commit id, README.md's bytes) of a repository; b"" where there is none."""
    with Repo(str(path)) as repo:
        try:
            commit_id = repo.refs[DEFAULT_BRANCH]
        except KeyError:
            return None, b""
        commit = repo[commit_id]
        tree = repo[commit.tree] if isinstance(commit, Commit) else None
        if not isinstance(tree, Tree) or README not in tree:
            return commit_id.decode(), b""
        _, sha = tree[README]
        blob = repo[sha]
        return commit_id.decode(), blob.as_raw_string() if isinstance(blob, Blob) else b""


def gitattributes() -> bytes:
    """The .gitattributes of a new model."""
    lines = [f"{pattern} filter=lfs diff=lfs merge=lfs -text" for pattern in LFS_PATTERNS]
    return ("\n".join(lines) + "\n").encode()


def create_model_repo(path: Path, display_name: str, author: str) -> bytes:
    """Create the bare repository with its first commit on master; returns the commit id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".creating")
    # Leftovers of a deletion or creation that a crash cut short; the caller owns the id now.
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    with Repo.init_bare(str(staging), mkdir=True) as repo:
        config = repo.get_config()
        _set_repo_defaults(config)
        config.write_to_path()
        readme = Blob.from_string(README_TEMPLATE.format(name=display_name).encode())
        attributes = Blob.from_string(gitattributes())
        tree = Tree()
        tree.add(b".gitattributes", 0o100644, attributes.id)
        tree.add(b"README.md", 0o100644, readme.id)
        commit = Commit()
        commit.tree = tree.id
        commit.author = commit.committer = f"{author} <{author}@amphub>".encode()
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"Initial commit\n"
        for obj in (readme, attributes, tree, commit):
            repo.object_store.add_object(obj)
        repo.refs[DEFAULT_BRANCH] = commit.id
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), DEFAULT_BRANCH)
    # Renamed into place whole, so a crash never leaves a half-made repository at `path`.
    staging.rename(path)
    return commit.id


def _set_repo_defaults(config: ConfigFile) -> bool:
    """Set amphub's settings that are missing from a repository's config; True if any was."""
    if config.get_boolean((b"core",), b"multiPackIndex") is not None:
        return False
    # amphub never writes a multi-pack-index; without this dulwich stats for one on
    # every object lookup.
    config.set((b"core",), b"multiPackIndex", False)
    return True


def prepare_repo(path: Path) -> None:
    """Add missing amphub settings to an existing repository's config before opening it."""
    config_path = path / "config"
    try:
        config = ConfigFile.from_path(str(config_path))
        if _set_repo_defaults(config):
            config.write_to_path()
    except (FileNotFoundError, FileLocked):
        pass  # not a repository (the caller reports it), or a writer is busy: next time


def delete_model_repo(path: Path) -> None:
    """Remove a repository from disk."""
    shutil.rmtree(path, ignore_errors=True)


def repo_size(path: Path) -> int:
    """Bytes the repository takes on disk, not counting amphub's cached packs.

    Nor the Xet uploads kept beside it until their files are stored: their reservations
    count them while they wait.

    A push running at the same time creates and removes temporary packs, so a file
    that vanishes between listing and stat is simply not counted.
    """
    total = 0
    for folder, subfolders, files in os.walk(path):
        if folder == str(path):
            subfolders[:] = [s for s in subfolders if s not in (PACK_CACHE_DIR, XET_STAGING_DIR)]
        for name in files:
            if is_scratch(name):
                continue
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(folder, name), follow_symlinks=False).st_size
    return total


def is_scratch(name: str) -> bool:
    """Whether a repository's file is one a write renames or removes when it is done.

    dulwich receives a pack as `objects/tmp_pack_*` or `objects/pack/tmp*`, and writes
    every ref, index and loose object as `<name>.lock` first.
    """
    return name.startswith("tmp") or name.endswith(".lock")


def push_leftovers(path: Path) -> list[Path]:
    """The scratch files of writes in a repository, and packs whose index was never written."""
    pack_dir = path / "objects" / "pack"
    found = [p for p in path.rglob("*") if is_scratch(p.name) and p.is_file()]
    found += [p for p in pack_dir.glob("pack-*.pack") if not p.with_suffix(".idx").exists()]
    return found


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()  # gone meanwhile: as if just touched, so left alone


def model_repositories(repos_dir: Path) -> list[tuple[str, str]]:
    """(space id, model id) of every repository under `repos/`."""
    return [
        (repo.parent.name, repo.name.removesuffix(".git"))
        for repo in repos_dir.glob("*/*.git")
        if repo.is_dir()
    ]


class RepoStore(Protocol):
    """Where the models' bare repositories live, and the lock each one's ref updates take.

    `create`, `delete` and `size` block: run them on the hub's threads.
    """

    def path(self, space_id: str, model_id: str) -> Path:
        """The bare repository of a model."""
        ...

    def lock(self, path: Path) -> AbstractContextManager[object]:
        """The lock held while a repository's refs move (or it is deleted)."""
        ...

    def create(self, path: Path, display_name: str, author: str) -> bytes:
        """Make the repository with its first commit on master; returns the commit id."""
        ...

    def delete(self, path: Path) -> None:
        """Remove a repository."""
        ...

    def size(self, path: Path) -> int:
        """Bytes the repository takes."""
        ...

    def mark_rewritten(self, path: Path, when: float) -> None:
        """Note that a ref was deleted or rewound: objects may be left for pruning."""
        ...

    def models(self) -> list[tuple[str, str]]:
        """(space id, model id) of every repository there is."""
        ...

    def leftovers(self, path: Path, older_than: float) -> list[Path]:
        """What interrupted writes left in a repository, untouched for `older_than` seconds."""
        ...

    def remove_leftovers(self, path: Path, older_than: float) -> int:
        """Remove `leftovers(path, older_than)`; how many there were."""
        ...

    def check(self, path: Path) -> list[str]:
        """What is wrong with a repository, as `git fsck` would say (reads every pack)."""
        ...

    def move_aside(self, path: Path) -> Path:
        """Move a repository out of the way, kept whole; where it went."""
        ...

    def rewritten_at(self, path: Path) -> float | None:
        """When a ref was last deleted or rewound, if nothing was pruned since."""
        ...

    def clear_rewritten(self, path: Path, when: float) -> None:
        """Forget the mark of `when`, unless a later rewrite replaced it."""
        ...


class LocalRepoStore:
    """Repositories under the data dir's `repos/`, locked per process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._locks = RepoLocks()

    def path(self, space_id: str, model_id: str) -> Path:
        """The bare repository of a model."""
        return repo_path(self.config, space_id, model_id)

    def lock(self, path: Path) -> AbstractContextManager[object]:
        """The lock held while a repository's refs move (or it is deleted)."""
        return self._locks.for_repo(path)

    def create(self, path: Path, display_name: str, author: str) -> bytes:
        """Make the repository with its first commit on master; returns the commit id."""
        return create_model_repo(path, display_name, author)

    def delete(self, path: Path) -> None:
        """Remove a repository."""
        delete_model_repo(path)

    def size(self, path: Path) -> int:
        """Bytes the repository takes."""
        return repo_size(path)

    def mark_rewritten(self, path: Path, when: float) -> None:
        """Note that a ref was deleted or rewound: objects may be left for pruning."""
        (path / REWRITTEN_FILE).write_text(f"{when:.0f}\n")

    def models(self) -> list[tuple[str, str]]:
        """(space id, model id) of every repository under `repos/`."""
        return model_repositories(self.config.repos_dir)

    def leftovers(self, path: Path, older_than: float) -> list[Path]:
        """What interrupted writes left in a repository, untouched for `older_than` seconds.

        A live write's scratch files are younger than any sensible `older_than`; only a
        process that writes no repository (at start) may ask for all of them with 0.
        """
        now = time.time()
        return [p for p in push_leftovers(path) if now - _modified(p) >= older_than]

    def remove_leftovers(self, path: Path, older_than: float) -> int:
        """Remove `leftovers(path, older_than)`; how many there were."""
        found = self.leftovers(path, older_than)
        for leftover in found:
            leftover.unlink(missing_ok=True)
        return len(found)

    def check(self, path: Path) -> list[str]:
        """What is wrong with a repository, as `git fsck` would say (reads every pack)."""
        return repository_problems(path)

    def move_aside(self, path: Path) -> Path:
        """Move a repository to `aside/repos/<space>/` with a time stamp, kept whole."""
        target = self.config.data_dir / "aside" / "repos" / path.parent.name
        target.mkdir(parents=True, exist_ok=True)
        moved = target / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}"
        path.rename(moved)
        return moved

    def rewritten_at(self, path: Path) -> float | None:
        """When a ref was last deleted or rewound, if nothing was pruned since."""
        try:
            return float((path / REWRITTEN_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def clear_rewritten(self, path: Path, when: float) -> None:
        """Forget the mark of `when`, unless a later rewrite replaced it."""
        if self.rewritten_at(path) == when:
            (path / REWRITTEN_FILE).unlink()

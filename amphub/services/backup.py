"""`amphub backup` and `amphub restore`: a consistent copy of a data dir a server is using.

The order makes the copy consistent without stopping the server:

1. Each repository's refs, first. A push writes and indexes its pack before it moves a
   ref, and git-lfs (and a Hugging Face commit) stores and links the LFS objects before
   the commit that names them, so whatever these refs reach is already on disk, and its
   objects already linked in the database.
2. The database, with SQLite's online backup API: one instant, every acknowledged write
   up to it.
3. The objects of the repositories the database copy names, and the LFS objects it names.
   Objects leave the disk only when pruning repacks a repository (into a new pack first)
   or when no model links them, so a repository whose files vanished is gone over again.

The copy may hold the refs of just before a push that the database copy records: that
push ended after the backup began. Its repository is whole either way.

A hub on PostgreSQL has its metadata backed up by the database's own tools (pg_dump):
step 2 reads the models and objects the live database names instead of copying it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from amphub import db
from amphub.clock import rfc3339, system_clock
from amphub.config import Config
from amphub.storage.local_objects import fsync_path, sync_file_system
from amphub.storage.repos import create_model_repo, model_repositories, repo_path
from amphub.storage.snapshot import (
    Copier,
    capture_refs,
    copy_data_dir,
    copy_lfs_objects,
    copy_repository,
    missing_ref_targets,
)
from amphub.units import human_size

# Written last into a backup: a folder without it is a backup that did not finish.
MARKER = "amphub-backup.txt"
# secret.key: a data dir no server of this version started yet still has its secret there.
SETTINGS_FILES = ("secret.key", "amphub.toml")
# Passes over a repository whose files vanished while it was copied (pruning repacked it).
REPOSITORY_PASSES = 3


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


def backup(config: Config, dest: Path) -> list[str]:
    """Copy the data dir to `dest`, an empty or new folder; what was copied, as sentences.

    On PostgreSQL the metadata is not copied (`pg_dump` does that): the repositories and
    objects the database names as the backup begins are, and the objects are listed.
    """
    on_sqlite = config.database == "sqlite"
    if on_sqlite and not config.db_path.is_file():
        raise BackupError(f"{config.data_dir} holds no amphub database")
    if not on_sqlite and not config.repos_dir.is_dir():
        # Else every model would be backed up as new and empty: a mistyped --data.
        raise BackupError(f"{config.data_dir} holds no amphub repositories; check --data")
    _refuse_unless_empty(dest, "a backup goes into a new or empty folder")
    began = time.monotonic()
    copied = Config(data_dir=dest)
    copier = Copier()
    captured = {
        key
        for key in model_repositories(config.repos_dir)
        if capture_refs(repo_path(config, *key), repo_path(copied, *key), copier)
    }
    # What the copy holds: a copy of the SQLite file, or what PostgreSQL holds now.
    named = copied.db_path if on_sqlite else config.database
    if on_sqlite:
        db.copy_database(config.db_path, copied.db_path)
    models = {(model.space_id, model.id): model for model in db.models_in(named)}
    said, incomplete = _copy_repositories(config, copied, models, captured, copier)
    oids = db.snapshot_oids(named)
    if config.storage == "local":
        missing = copy_lfs_objects(config.lfs_dir, copied.lfs_dir, oids, copier)
    else:
        missing = []
        said.append(_name_bucket_objects(config, dest, oids))
    deleted = _deleted_since(config, models)
    for key in deleted:
        _remove_repository(repo_path(copied, *key))
        said.append(f"model {'/'.join(key)} was deleted while the backup ran: left out")
    for key in incomplete.keys() - deleted:
        refs = ", ".join(incomplete[key])
        said.append(f"repository {'/'.join(key)}: the objects of {refs} were not copied")
    said.append(f"copied {len(oids) - len(missing)} LFS objects")
    if on_sqlite:
        lost = asyncio.run(_forget(copied.db_path, deleted, missing)) if deleted or missing else []
        if lost:
            said.append(
                f"{len(lost)} LFS objects the database names were not in the store (lost"
                " before the backup): the restored server asks the next push of each for it"
            )
    elif missing:
        said.append(
            f"{len(missing)} LFS objects the database names were not in the store (lost before"
            " the backup): `amphub doctor` names them after a restore"
        )
    for name in SETTINGS_FILES:
        if (config.data_dir / name).is_file():
            copier.copy(config.data_dir / name, dest / name)
    if on_sqlite:
        said.insert(0, _checked_database(copied.db_path))
    else:
        said.insert(0, _metadata_elsewhere(config, dest, oids))
    said.append(_copied_sentence(copier))
    said.append(
        f"backup of {config.data_dir} finished in {dest} in {time.monotonic() - began:.1f} s;"
        f" restore it with: amphub restore {dest} --data DIR"
    )
    _finish(dest, said)
    return said


Key = tuple[str, str]
# In a backup of a hub whose LFS objects live in a bucket, or whose metadata lives in
# PostgreSQL: the oids its database needs.
OBJECT_LIST = "lfs-objects.txt"


def _name_bucket_objects(config: Config, dest: Path, oids: Iterable[str]) -> str:
    """List the objects the backup needs; the bucket is backed up by the store itself."""
    needed = sorted(oids)
    (dest / OBJECT_LIST).write_text("".join(f"{oid}\n" for oid in needed))
    return (
        f"{len(needed)} LFS objects in {config.storage} are named in {OBJECT_LIST}, not"
        " copied: the bucket's own versioning or replication keeps them"
    )


def _metadata_elsewhere(config: Config, dest: Path, oids: Iterable[str]) -> str:
    """The sentence on a PostgreSQL hub's metadata, which the backup does not hold."""
    if config.storage == "local":  # named already when the objects are in a bucket
        (dest / OBJECT_LIST).write_text("".join(f"{oid}\n" for oid in sorted(oids)))
    return (
        "the metadata is in PostgreSQL, not in this backup: take it with pg_dump right after"
        " the backup (what is written in between, `amphub doctor` names after a restore);"
        f" {OBJECT_LIST} lists the LFS objects the database named as the backup began"
    )


def _copy_repositories(
    config: Config, copied: Config, models: dict[Key, db.Model], captured: set[Key], copier: Copier
) -> tuple[list[str], dict[Key, list[str]]]:
    """Copy the repository of each model of the database copy, whose refs are `captured`.

    Returns what it did, and the refs whose objects it could not copy, by repository.
    """
    for key in captured - models.keys():  # deleted before the database was copied
        _remove_repository(repo_path(copied, *key))
    said, incomplete = [], {}
    for key, model in models.items():
        source, target = repo_path(config, *key), repo_path(copied, *key)
        if key not in captured and not capture_refs(source, target, copier):
            # Its creation was under way: finish it as a restart would.
            create_model_repo(target, model.name, model.owner)
            said.append(
                f"model {'/'.join(key)} had no repository yet: made it, with its first commit"
            )
            continue
        missing = _copy_repository(source, target, copier)
        if missing:
            incomplete[key] = missing
    return [f"copied {len(models)} repositories", *said], incomplete


def _deleted_since(config: Config, models: dict[Key, db.Model]) -> set[Key]:
    """The models of the database copy that the live database no longer has, as they were.

    A deletion removes the row before the repository, then the objects no model links:
    a model whose row is still there once everything is copied was copied whole.
    """
    live = {
        (model.space_id, model.id): model.created_at
        for model in db.models_in(config.database_target)
    }
    return {key for key, model in models.items() if live.get(key) != model.created_at}


async def _forget(path: Path, deleted: set[Key], missing: list[str]) -> list[str]:
    """Drop from a database copy the models deleted since; the missing objects still linked."""
    async with db.opened(path) as database:
        for space_id, model_id in deleted:
            await db.delete_model_row(database, space_id, model_id)
        return [oid for oid in missing if not await db.forget_object_if_unreferenced(database, oid)]


def restore(source: Path, config: Config) -> list[str]:
    """Copy a finished backup into an empty or new data dir; what was copied, as sentences."""
    if not (source / MARKER).is_file():
        raise BackupError(f"{source} is not a finished amphub backup (it has no {MARKER})")
    _refuse_unless_empty(config.data_dir, "a backup is restored into a new or empty data dir")
    copier = Copier()
    copy_data_dir(source, config.data_dir, copier, leave_out={MARKER})
    config.data_dir.chmod(0o700)
    sync_file_system(config.data_dir)
    if not config.db_path.is_file():  # the backup of a hub on PostgreSQL
        database = (
            "the metadata is not in the backup: restore its pg_dump into an empty database"
            " (pg_restore --dbname URL DUMP) and give that URL as the database setting"
        )
    else:
        database = _checked_database(config.db_path)
    return [
        f"restored {source} into {config.data_dir}",
        database,
        _copied_sentence(copier),
        f"start the server on it: amphub serve --data {config.data_dir}",
    ]


def _refuse_unless_empty(folder: Path, rule: str) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} is not empty: {rule}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def _copy_repository(source: Path, target: Path, copier: Copier) -> list[str]:
    """Copy a repository whose refs are copied, going over it again while files vanish.

    Returns the refs whose objects it could not copy.
    """
    for _ in range(REPOSITORY_PASSES):
        vanished = copy_repository(source, target, copier)
        missing = missing_ref_targets(target)
        if not vanished and not missing:
            break
    return missing


def _remove_repository(path: Path) -> None:
    shutil.rmtree(path)
    if not any(path.parent.iterdir()):
        path.parent.rmdir()


def _checked_database(path: Path) -> str:
    """A sentence on a database copy that SQLite's integrity check passed; else BackupError."""
    problems = db.database_problems(path)
    if problems:
        raise BackupError(f"the database copy in {path} is damaged: {problems[0]}")
    return f"copied the database ({human_size(path.stat().st_size)}); SQLite checked it whole"


def _copied_sentence(copier: Copier) -> str:
    copied = copier.copied
    size = human_size(copied.bytes)
    if not copied.linked:
        return f"copied {copied.files} files ({size}); no hard links: another file system"
    return (
        f"copied {copied.files} files ({size}), {copied.linked} of them hard-linked (objects"
        " never change): on the data dir's file system, so not a copy that survives its disk"
    )


def _finish(dest: Path, said: list[str]) -> None:
    """Write everything to disk, then the marker that says the backup is whole."""
    sync_file_system(dest)
    marker = dest / MARKER
    taken = rfc3339(system_clock())
    marker.write_text(f"amphub backup finished {taken}\n" + "".join(f"{s}\n" for s in said))
    fsync_path(marker)
    fsync_path(dest)

"""The object store the `storage` setting names."""

from __future__ import annotations

from amphub.config import Config
from amphub.storage.local_objects import LocalObjectStore
from amphub.storage.objects import ObjectStore, Runner
from amphub.storage.s3_objects import S3ObjectStore


def object_store(config: Config, run: Runner) -> ObjectStore:
    """The data dir's lfs/objects/ for `local`, else the bucket of s3://BUCKET[/PREFIX]."""
    if config.storage == "local":
        return LocalObjectStore(config.lfs_dir, config.tmp_dir, run)
    return S3ObjectStore(config, run)

"""Settings: command-line flags > AMPHUB_* environment > amphub.toml in the data dir > defaults."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024**2
GIB = 1024**3


class ConfigError(ValueError):
    """A setting has a value of the wrong kind."""


@dataclass(frozen=True)
class Config:
    """Everything the server reads from its settings."""

    data_dir: Path = Path("amphub-data")
    host: str = "127.0.0.1"
    port: int = 8080
    # None: clone URLs are built from the address the request came to.
    base_url: str | None = None
    quota_unit: int = 10 * GIB
    grace_days: int = 7
    retention_days: int = 15
    # Commits a deleted or rewound branch left behind stay on disk this long, then go.
    prune_days: int = 14
    workers: int = 2
    zone: str = "default"
    # A README or file view rendering longer than this is shown as plain text instead.
    render_seconds: int = 2
    # The largest file a push may store in git itself (larger ones belong in LFS).
    max_git_file_size: int = 100 * MIB
    # A connection whose request headers are not all in within this many seconds of its
    # opening (or of its last answer) is closed: it also ends idle keep-alive connections.
    header_timeout: int = 30
    # A request body arriving slower than this many bytes a second, averaged over each
    # window of body_rate_window seconds, is cut (408); 0 turns the check off.
    min_body_rate: int = 1024
    body_rate_window: int = 30
    # Open connections from one client address, and in all (kept below the open-file limit).
    connections_per_address: int = 64
    max_connections: int = 4096
    # This process's name in task records, logs and metrics: one per node of a hub.
    node: str = field(default_factory=socket.gethostname)
    # On SIGTERM, requests under way get this long to finish before they are cut.
    shutdown_timeout: int = 30
    # How `amphub serve` writes its log and access lines: `text`, or `json` (one object a line).
    log_format: str = "text"
    # An object no model links is deleted only once it was last written this long ago: an
    # upload that stored it anew (on another node too) has that long to link it.
    object_grace_seconds: int = 3600
    # Where the metadata lives: `sqlite` (amphub.db in the data dir) or the postgresql:// URL
    # of a database that every node shares. Never printed: it may hold a password.
    database: str = field(default="sqlite", repr=False)
    # Where LFS objects live: `local` (lfs/objects/ in the data dir) or s3://BUCKET[/PREFIX].
    storage: str = "local"
    # The S3-compatible service (None: AWS S3 of s3_region), and `path` or `virtual` addressing.
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_addressing: str = "path"
    # 1: downloads go from the bucket to the client by presigned URL; 0: amphub streams them
    # (for a store the clients cannot reach).
    s3_redirect: int = 1
    # Objects larger than this go to S3 in parts of at least this size (S3's least is 5 MiB;
    # at most 10,000 parts: 160 GB objects). amphub holds about two parts per upload.
    s3_part_size: int = 16 * MIB
    # Credentials, when not in the AWS_* variables; never printed.
    s3_access_key_id: str | None = field(default=None, repr=False)
    s3_secret_access_key: str | None = field(default=None, repr=False)
    # 1: a whole LFS object sent from local disk is hashed as it goes and cut short if its
    # bytes no longer hash to its oid; 0: sendfile alone (a file system that checksums its
    # data, such as ZFS or btrfs, already refuses damaged reads).
    verify_downloads: int = 1
    # What a mirrored model whose scan found something suspicious gets: served with a
    # warning ("warn") or refused as an unsafe one is ("block").
    mirror_suspicious: str = "warn"
    # How long a Hub API call for a mirrored model still being fetched or scanned is held
    # before it is answered 503: huggingface_hub waits on these calls without a timeout,
    # so a user's first snapshot_download gets the model rather than an error.
    mirror_wait_seconds: int = 50
    # A running task is its node's for this long, renewed every third of it; a task whose
    # node stopped renewing (it died) is taken over by any node once its lease lapses.
    task_lease_seconds: int = 60
    # Failed sign-ins an address may have within five minutes of its first one.
    sign_in_limit: int = 10

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "amphub.db"

    @property
    def database_target(self) -> Path | str:
        """What `db.connect` opens: the SQLite file, or the PostgreSQL URL."""
        return self.db_path if self.database == "sqlite" else self.database

    @property
    def repos_dir(self) -> Path:
        """Where the bare git repositories live."""
        return self.data_dir / "repos"

    @property
    def lfs_dir(self) -> Path:
        """The LFS object store."""
        return self.data_dir / "lfs" / "objects"

    @property
    def secret_path(self) -> Path:
        """The signing secret of a data dir from before it moved into the database."""
        return self.data_dir / "secret.key"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the same file system as the data."""
        return self.data_dir / "tmp"


SETTINGS: dict[str, type] = {
    "host": str,
    "port": int,
    "base_url": str,
    "quota_unit": int,
    "grace_days": int,
    "retention_days": int,
    "prune_days": int,
    "workers": int,
    "zone": str,
    "render_seconds": int,
    "max_git_file_size": int,
    "header_timeout": int,
    "min_body_rate": int,
    "body_rate_window": int,
    "connections_per_address": int,
    "max_connections": int,
    "node": str,
    "shutdown_timeout": int,
    "log_format": str,
    "object_grace_seconds": int,
    "database": str,
    "storage": str,
    "s3_endpoint": str,
    "s3_region": str,
    "s3_addressing": str,
    "s3_redirect": int,
    "s3_part_size": int,
    "s3_access_key_id": str,
    "s3_secret_access_key": str,
    "verify_downloads": int,
    "mirror_suspicious": str,
    "mirror_wait_seconds": int,
    "task_lease_seconds": int,
    "sign_in_limit": int,
}


# The smallest and largest value of each whole-number setting.
RANGES: dict[str, tuple[int, int]] = {
    "port": (0, 65535),
    "quota_unit": (1, 2**62),
    "grace_days": (0, 36500),
    "retention_days": (0, 36500),
    "prune_days": (0, 36500),
    "workers": (1, 256),
    "render_seconds": (1, 3600),
    "max_git_file_size": (1024, 2**62),
    "header_timeout": (1, 3600),
    "min_body_rate": (0, 2**40),
    "body_rate_window": (1, 3600),
    "connections_per_address": (1, 1_000_000),
    "max_connections": (1, 1_000_000),
    "shutdown_timeout": (0, 3600),
    "object_grace_seconds": (0, 10**8),
    "s3_redirect": (0, 1),
    "verify_downloads": (0, 1),
    "s3_part_size": (64 * 1024, 5 * GIB),
    "task_lease_seconds": (3, 3600),
    "mirror_wait_seconds": (0, 3600),
    "sign_in_limit": (1, 1_000_000),
}

# The form of each text setting that has one, and what to say when it is not met.
FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    # A node name is written into log lines: nothing that could start a line of its own.
    "node": (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}"),
        "a host name (letters, digits, ._-)",
    ),
    "log_format": (re.compile(r"text|json"), "text or json"),
    "s3_addressing": (re.compile(r"path|virtual"), "path or virtual"),
    "storage": (re.compile(r"local|s3://.+"), "local or s3://BUCKET[/PREFIX]"),
    "database": (
        re.compile(r"sqlite|postgres(ql)?://.+"),
        "sqlite or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE",
    ),
    "mirror_suspicious": (re.compile(r"warn|block"), "warn or block"),
}


def _whole_number(name: str, value: Any, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise ConfigError(f"{source}: {name} must be a whole number, not {value!r}")
    low, high = RANGES[name]
    if not low <= number <= high:
        raise ConfigError(f"{source}: {name} must be {low} to {high}, not {number}")
    return number


def _convert(name: str, value: Any, source: str) -> Any:
    kind = SETTINGS[name]
    if kind is int:
        return _whole_number(name, value, source)
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {name} must be text, not {value!r}")
    if name in FORMS:
        pattern, form = FORMS[name]
        if not pattern.fullmatch(value):
            raise ConfigError(f"{source}: {name} must be {form}, not {value!r}")
    return value.rstrip("/") if name in ("base_url", "storage") else value


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
    return {name: _convert(name, value, str(path)) for name, value in table.items()}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found = {}
    for name in SETTINGS:
        variable = f"AMPHUB_{name.upper()}"
        if variable in environ:
            found[name] = _convert(name, environ[variable], variable)
    return found


def load_config(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Merge the settings sources; `flags` holds only the flags given on the command line."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    data_dir = Path(flags.pop("data_dir", None) or environ.get("AMPHUB_DATA") or "amphub-data")
    values: dict[str, Any] = {}
    values.update(_from_file(data_dir / "amphub.toml"))
    values.update(_from_env(environ))
    values.update({name: _convert(name, value, "--" + name) for name, value in flags.items()})
    return dataclasses.replace(Config(data_dir=data_dir.resolve()), **values)

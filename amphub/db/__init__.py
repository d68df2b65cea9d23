"""The database: the engines, the schema's migrations and every SQL statement, by area.

SQLite (the embedded default, `sqlite_database.py`) or PostgreSQL (for several nodes,
`postgresql_database.py`) behind one interface (`core.Database`); each statement is
written once, in SQL both engines run (`dialect.py`).
"""

from amphub.db.audit import *  # noqa: F403
from amphub.db.cards import *  # noqa: F403
from amphub.db.copy import NotEmpty, copy_metadata
from amphub.db.core import (
    Audit,
    AuditEntry,
    Conflict,
    Database,
    Deployment,
    DeployTarget,
    LfsLock,
    Model,
    Push,
    Replica,
    Space,
    Task,
    User,
    Zone,
)
from amphub.db.deployments import *  # noqa: F403
from amphub.db.engines import NewerDatabase, connect, migrate, opened
from amphub.db.lfs import *  # noqa: F403
from amphub.db.members import *  # noqa: F403
from amphub.db.mirror_schedules import *  # noqa: F403
from amphub.db.models import *  # noqa: F403
from amphub.db.registries import *  # noqa: F403
from amphub.db.replicas import *  # noqa: F403
from amphub.db.reservations import *  # noqa: F403
from amphub.db.schema import MIGRATIONS
from amphub.db.sign_ins import *  # noqa: F403
from amphub.db.signing_secret import *  # noqa: F403
from amphub.db.snapshot import *  # noqa: F403
from amphub.db.spaces import *  # noqa: F403
from amphub.db.sqlite_database import SqliteDatabase
from amphub.db.tasks import *  # noqa: F403
from amphub.db.upstreams import *  # noqa: F403
from amphub.db.users import *  # noqa: F403
from amphub.db.xet import *  # noqa: F403

__all__ = [
    "MIGRATIONS",
    "Audit",
    "AuditEntry",
    "Conflict",
    "Database",
    "Deployment",
    "DeployTarget",
    "LfsLock",
    "NewerDatabase",
    "NotEmpty",
    "copy_metadata",
    "Model",
    "Push",
    "Replica",
    "Space",
    "SqliteDatabase",
    "Task",
    "User",
    "Zone",
    "connect",
    "migrate",
    "opened",
]

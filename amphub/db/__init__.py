"""The database: migrations and every SQL statement, by area.

One aiosqlite connection runs transactions and most reads on its own thread; another
works on the event loop's thread: it looks rows up by key (`look_up`) and runs single
statements (`Database.write`).
"""

from amphub.db.audit import *  # noqa: F403
from amphub.db.cards import *  # noqa: F403
from amphub.db.core import (
    MIGRATIONS,
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
    connect,
    integrity_problems,
    migrate,
    opened,
)
from amphub.db.deployments import *  # noqa: F403
from amphub.db.lfs import *  # noqa: F403
from amphub.db.members import *  # noqa: F403
from amphub.db.models import *  # noqa: F403
from amphub.db.peers import *  # noqa: F403
from amphub.db.replicas import *  # noqa: F403
from amphub.db.reservations import *  # noqa: F403
from amphub.db.sign_ins import *  # noqa: F403
from amphub.db.signing_secret import *  # noqa: F403
from amphub.db.snapshot import *  # noqa: F403
from amphub.db.spaces import *  # noqa: F403
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
    "Model",
    "Push",
    "Replica",
    "Space",
    "Task",
    "User",
    "Zone",
    "connect",
    "integrity_problems",
    "migrate",
    "opened",
]

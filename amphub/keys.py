"""Every typed key under which the application and requests keep their state."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from aiohttp import web

from amphub.background import Background
from amphub.clock import Clock
from amphub.config import Config
from amphub.db import Database, ModelWithRoles
from amphub.git.locks import RepoLocks
from amphub.lfs.groups import SmallWrites
from amphub.lfs.store import ObjectStore
from amphub.policy import Actor
from amphub.policy.ratelimit import FailedSignIns
from amphub.policy.tokens import TransferToken
from amphub.quota import Claims, KeyedLocks, LinkBatch, Reservations
from amphub.search_index import SearchIndex
from amphub.tasks.queue import TaskQueue

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
SIGN_INS = web.AppKey("sign_ins", FailedSignIns)
REPO_LOCKS = web.AppKey("repo_locks", RepoLocks)
GIT_EXECUTOR = web.AppKey("git_executor", ThreadPoolExecutor)
SECRET = web.AppKey("secret", bytes)
RESERVATIONS = web.AppKey("reservations", Reservations)
OBJECT_LOCKS = web.AppKey("object_locks", KeyedLocks)
OBJECT_CLAIMS = web.AppKey("object_claims", Claims)
# The batch of stored objects of each (space, model) that has not taken the quota lock yet.
LINK_BATCHES = web.AppKey("link_batches", dict[tuple[str, str], LinkBatch])
LFS_STORE = web.AppKey("lfs_store", ObjectStore)
SMALL_WRITES = web.AppKey("small_writes", SmallWrites)
BACKGROUND = web.AppKey("background", Background)
TASKS = web.AppKey("tasks", TaskQueue)
SCAN_POOL = web.AppKey("scan_pool", ProcessPoolExecutor)
SEARCH_INDEX = web.AppKey("search_index", SearchIndex)

ACTOR = web.RequestKey("actor", Actor)
# Set when the request carried a transfer or deployment token instead of a key.
TOKEN = web.RequestKey("token", TransferToken)
# The model a token is good for, with the caller's roles (None if it does not exist), read
# with the token's user: requests that carry a token ask about that model only.
TOKEN_MODEL = web.RequestKey("token_model", ModelWithRoles | None)

"""Every typed key under which the application and requests keep their state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from amphub.clock import Clock
from amphub.config import Config
from amphub.db import Database
from amphub.git.locks import RepoLocks
from amphub.policy import Actor
from amphub.policy.ratelimit import FailedSignIns

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
SIGN_INS = web.AppKey("sign_ins", FailedSignIns)
REPO_LOCKS = web.AppKey("repo_locks", RepoLocks)
GIT_EXECUTOR = web.AppKey("git_executor", ThreadPoolExecutor)

ACTOR = web.RequestKey("actor", Actor)

"""The Hub: every part the services share, built once by the app factory or the CLI."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from amphub.clock import Clock, system_clock
from amphub.config import Config
from amphub.db import Database
from amphub.search.index import SearchIndex
from amphub.services.background import Background
from amphub.services.locks import KeyedLocks, LinkBatch
from amphub.services.lru import SizedLru
from amphub.services.metrics import Metrics
from amphub.services.task_queue import TaskQueue
from amphub.services.worker_processes import WorkerProcesses
from amphub.storage.object_stores import object_store
from amphub.storage.objects import ObjectStore
from amphub.storage.repos import LocalRepoStore, RepoStore
from amphub.storage.small_writes import SmallWrites

T = TypeVar("T")
# Threads for blocking work (dulwich, file system), apart from the loop's default pool.
BLOCKING_THREADS = 32
# Rendered READMEs and file views kept, in characters of HTML.
RENDERED_CAPACITY = 32 * 1024 * 1024
# Characters of scan refusals kept.
REFUSALS_CAPACITY = 1024 * 1024


@dataclass(eq=False, repr=False)
class Hub:
    """What the services share; `db`, `secret` and the pools are set while the server runs."""

    config: Config
    clock: Clock = system_clock
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    # The reservations this node's uploads keep, by (space, object): renewed while they run.
    in_flight: Counter[tuple[str, str]] = field(default_factory=Counter)
    # The batch of stored objects of each (space, model) that has not taken the quota lock yet.
    link_batches: dict[tuple[str, str], LinkBatch] = field(default_factory=dict)
    background: Background = field(default_factory=Background)
    tasks: TaskQueue = field(default_factory=TaskQueue)
    metrics: Metrics = field(default_factory=Metrics)
    search: SearchIndex = field(default_factory=SearchIndex)
    threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="git")
    )
    # HTML of READMEs and file views, by what it was rendered from.
    rendered: SizedLru[tuple[str, ...], str] = field(
        default_factory=lambda: SizedLru(RENDERED_CAPACITY)
    )
    # The renders under way, by the same key: views asking at once share one.
    rendering: dict[tuple[str, ...], asyncio.Future[str]] = field(default_factory=dict)
    # Why each finished scan (by task id) keeps its commit out of a mirror, "" if it does
    # not: asked at every download of a mirrored model, and a finished scan never changes.
    scan_refusals: SizedLru[int, str] = field(default_factory=lambda: SizedLru(REFUSALS_CAPACITY))
    db: Database = field(init=False)
    # Signs tokens and sessions, seals credentials: the same on every node (from the database).
    secret: bytes = field(init=False)
    # This process in the claims it holds and renews.
    holder: str = field(init=False)
    scan_pool: ProcessPoolExecutor = field(init=False)
    render_pool: WorkerProcesses = field(init=False)
    objects: ObjectStore = field(init=False)
    repos: RepoStore = field(init=False)
    small_writes: SmallWrites = field(init=False)

    def __post_init__(self) -> None:
        self.objects = object_store(self.config, self.run_blocking)
        self.repos = LocalRepoStore(self.config)
        self.small_writes = SmallWrites(self.objects)
        self.holder = f"{self.config.node} {secrets.token_hex(4)}"

    async def run_blocking(self, work: Callable[[], T]) -> T:
        """Run blocking work (dulwich, the file system) on the hub's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, work)

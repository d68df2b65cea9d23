"""create_app: the only place where amphub's parts are wired together."""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from collections.abc import AsyncIterator

from aiohttp import web

from amphub import accounts, api, auth, db, errors, keys
from amphub.background import Background
from amphub.clock import Clock, system_clock
from amphub.config import Config
from amphub.git import routes as git_routes
from amphub.git.bridge import git_executor, run_blocking
from amphub.git.locks import RepoLocks
from amphub.hf import routes as hf_routes
from amphub.hf.xet import sweep_abandoned_xorbs
from amphub.lfs import routes as lfs_routes
from amphub.lfs.garbage import collect_unreferenced
from amphub.lfs.groups import SmallWrites
from amphub.lfs.store import ObjectStore
from amphub.policy.ratelimit import FailedSignIns
from amphub.quota import Claims, KeyedLocks, Reservations
from amphub.search_index import SearchIndex
from amphub.spaces import sweep_spaces
from amphub.tasks.deploy import run_deploy
from amphub.tasks.queue import TaskQueue, run_workers
from amphub.tasks.scan import run_scan, scan_processes
from amphub.tasks.sync import run_sync
from amphub.web import routes as web_routes


def prepare_data_dir(config: Config) -> None:
    """Create the data dir's folders and secret; clear scratch files a crash may have left."""
    shutil.rmtree(config.tmp_dir, ignore_errors=True)
    for folder in (config.data_dir, config.repos_dir, config.lfs_dir, config.tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if not config.secret_path.exists():
        fd = os.open(config.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as secret:
            secret.write(secrets.token_bytes(32))


async def bootstrap(config: Config, clock: Clock = system_clock) -> str | None:
    """Prepare the data dir and database; on first start return the new administrator's key."""
    prepare_data_dir(config)
    async with db.opened(config.db_path, clock) as database:
        return await accounts.ensure_admin(database)


async def open_database(app: web.Application) -> AsyncIterator[None]:
    """The database for the life of the app."""
    async with db.opened(app[keys.CONFIG].db_path, app[keys.CLOCK]) as database:
        app[keys.DB] = database
        yield


async def run_background(app: web.Application) -> AsyncIterator[None]:
    """The app's background steps, cancelled at shutdown."""
    app[keys.BACKGROUND] = Background()
    yield
    await app[keys.BACKGROUND].cancel_all()


async def warm_search(app: web.Application) -> AsyncIterator[None]:
    """Build the in-memory search index in the background as the server starts."""
    index = app[keys.SEARCH_INDEX]
    app[keys.BACKGROUND].spawn(db.warm_search_index(app[keys.DB], index), "build search index")
    yield


async def sweep_at_start(app: web.Application) -> AsyncIterator[None]:
    """Remove what crashes and abandoned uploads left: unreferenced objects, stale xorbs."""
    background = app[keys.BACKGROUND]
    store = app[keys.LFS_STORE]
    background.spawn(run_blocking(app, store.remove_leftovers), "remove leftover uploads")
    background.spawn(collect_unreferenced(app), "collect unreferenced objects")
    background.spawn(sweep_abandoned_xorbs(app), "remove abandoned Xet uploads")
    yield


def create_app(config: Config, clock: Clock = system_clock) -> web.Application:
    """The aiohttp application serving git, LFS, the API and everything else."""
    prepare_data_dir(config)
    app = web.Application(middlewares=[errors.middleware, auth.middleware])
    app[keys.CONFIG] = config
    app[keys.CLOCK] = clock
    app[keys.SECRET] = config.secret_path.read_bytes()
    app[keys.SIGN_INS] = FailedSignIns()
    app[keys.REPO_LOCKS] = RepoLocks()
    app[keys.RESERVATIONS] = Reservations()
    app[keys.OBJECT_LOCKS] = KeyedLocks()
    app[keys.OBJECT_CLAIMS] = Claims()
    app[keys.LINK_BATCHES] = {}
    app[keys.LFS_STORE] = ObjectStore(config.lfs_dir, config.tmp_dir)
    app[keys.SMALL_WRITES] = SmallWrites(app[keys.LFS_STORE], functools.partial(run_blocking, app))
    app[keys.TASKS] = TaskQueue({"scan": run_scan, "sync": run_sync, "deploy": run_deploy})
    app[keys.SEARCH_INDEX] = SearchIndex()
    app.cleanup_ctx.append(open_database)
    app.cleanup_ctx.append(git_executor)
    app.cleanup_ctx.append(run_background)
    app.cleanup_ctx.append(warm_search)
    app.cleanup_ctx.append(sweep_at_start)
    app.cleanup_ctx.append(sweep_spaces)
    app.cleanup_ctx.append(scan_processes)
    app.cleanup_ctx.append(run_workers)
    api.add_routes(app)
    git_routes.add_routes(app)
    lfs_routes.add_routes(app)
    hf_routes.add_routes(app)
    web_routes.add_routes(app)
    return app

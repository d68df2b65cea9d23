"""create_app: the only place where amphub's parts are wired together."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

from aiohttp import web

from amphub import accounts, api, auth, db, errors, keys
from amphub.clock import Clock, system_clock
from amphub.config import Config
from amphub.git import routes as git_routes
from amphub.git.bridge import git_executor
from amphub.git.locks import RepoLocks
from amphub.policy.ratelimit import FailedSignIns


def prepare_data_dir(config: Config) -> None:
    """Create the data dir's folders and clear scratch files a crash may have left."""
    shutil.rmtree(config.tmp_dir, ignore_errors=True)
    for folder in (config.data_dir, config.repos_dir, config.tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)


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


def create_app(config: Config, clock: Clock = system_clock) -> web.Application:
    """The aiohttp application serving git, the API and everything else."""
    app = web.Application(middlewares=[errors.middleware, auth.middleware])
    app[keys.CONFIG] = config
    app[keys.CLOCK] = clock
    app[keys.SIGN_INS] = FailedSignIns()
    app[keys.REPO_LOCKS] = RepoLocks()
    app.cleanup_ctx.append(open_database)
    app.cleanup_ctx.append(git_executor)
    api.add_routes(app)
    git_routes.add_routes(app)
    return app

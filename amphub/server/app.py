"""create_app: the only place where amphub's parts are wired together."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from amphub import api, db
from amphub.clock import Clock, system_clock
from amphub.config import Config
from amphub.git import routes as git_routes
from amphub.git.prune import pruning
from amphub.hf import routes as hf_routes
from amphub.hf.mirror import run_mirror
from amphub.hf.xet import sweep_abandoned_xorbs
from amphub.http import auth, body_rate, errors, request_metrics
from amphub.http.keys import HUB
from amphub.lfs import routes as lfs_routes
from amphub.server import operations
from amphub.server.upload_probe import probe_direct_uploads
from amphub.services import accounts
from amphub.services.doctor import repair_at_start
from amphub.services.hub import Hub
from amphub.services.leases import renewing
from amphub.services.mirror_schedule import refreshing_mirrors
from amphub.services.objects import collecting
from amphub.services.scan_pool import scan_processes
from amphub.services.signing_secret import load_secret
from amphub.services.spaces import sweeping_spaces
from amphub.services.tasks import Runner, running_workers
from amphub.tasks.deploy import run_deploy
from amphub.tasks.scan import run_scan
from amphub.tasks.sync import run_sync
from amphub.web import routes as web_routes
from amphub.web.rendered import render_processes

RUNNERS: dict[str, Runner] = {
    "scan": run_scan,
    "sync": run_sync,
    "deploy": run_deploy,
    "mirror": run_mirror,
}


def prepare_data_dir(config: Config) -> None:
    """Create the data dir's folders (also for the offline commands: no clearing)."""
    for folder in (config.data_dir, config.repos_dir, config.lfs_dir, config.tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    # Private models are files in here: other users of the host may not even look inside.
    config.data_dir.chmod(0o700)


async def bootstrap(config: Config, clock: Clock = system_clock) -> str | None:
    """Prepare the data dir and database; on first start return the new administrator's key."""
    prepare_data_dir(config)
    async with db.opened(config.database_target, clock) as database:
        return await accounts.ensure_admin(database)


def build_hub(config: Config, clock: Clock = system_clock) -> Hub:
    """The hub of a data dir prepared for use; its database is opened by `running`."""
    prepare_data_dir(config)
    return Hub(config, clock)


@contextlib.asynccontextmanager
async def running(hub: Hub) -> AsyncIterator[Hub]:
    """Everything of the hub with a lifetime, opened in order and closed in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        hub.db = await stack.enter_async_context(db.opened(hub.config.database_target, hub.clock))
        hub.locks.across = hub.db.exclusive
        await load_secret(hub)
        stack.callback(hub.threads.shutdown, wait=True, cancel_futures=True)
        await hub.objects.open()
        stack.push_async_callback(hub.objects.close)
        if hub.config.s3_redirect:  # clients that reach the store may upload to it too
            hub.objects.direct_uploads = await probe_direct_uploads(hub.objects)
        stack.push_async_callback(hub.background.cancel_all)
        # Scratch files of a run that ended; this one has written none yet.
        await hub.run_blocking(lambda: _clear(hub.config.tmp_dir))
        await repair_at_start(hub)
        _start_background_steps(hub)
        await stack.enter_async_context(renewing(hub))
        await stack.enter_async_context(sweeping_spaces(hub))
        await stack.enter_async_context(refreshing_mirrors(hub))
        await stack.enter_async_context(collecting(hub))
        await stack.enter_async_context(pruning(hub))
        await stack.enter_async_context(scan_processes(hub))
        await stack.enter_async_context(render_processes(hub))
        await stack.enter_async_context(running_workers(hub, RUNNERS))
        yield hub


@contextlib.asynccontextmanager
async def offline(config: Config) -> AsyncIterator[Hub]:
    """A hub for the offline admin commands: the database and the threads, nothing running."""
    hub = build_hub(config)
    try:
        async with db.opened(config.database_target, hub.clock) as database:
            hub.db = database
            hub.locks.across = database.exclusive
            await load_secret(hub)
            await hub.objects.open()
            try:
                yield hub
            finally:
                await hub.objects.close()
    finally:
        hub.threads.shutdown(wait=True)


def _clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()


def _start_background_steps(hub: Hub) -> None:
    """Build the search index, and remove what crashes and abandoned uploads left."""
    background = hub.background
    background.spawn(db.warm_search_index(hub.db, hub.search), "build search index")
    background.spawn(hub.objects.remove_leftovers(), "remove leftover uploads")
    background.spawn(sweep_abandoned_xorbs(hub), "remove abandoned Xet uploads")


def create_app(config: Config, clock: Clock = system_clock) -> web.Application:
    """The aiohttp application serving git, LFS, the API and everything else."""
    hub = build_hub(config, clock)
    middlewares = [request_metrics.middleware, body_rate.middleware, errors.middleware]
    app = web.Application(middlewares=[*middlewares, auth.middleware])
    app[HUB] = hub

    async def run_hub(app: web.Application) -> AsyncIterator[None]:
        async with running(hub):
            yield

    async def hand_back_tasks(app: web.Application) -> None:
        # At once when shutdown begins, while requests under way are given time to finish.
        await hub.tasks.stop_workers()

    app.cleanup_ctx.append(run_hub)
    app.on_shutdown.append(hand_back_tasks)
    operations.add_routes(app)
    api.add_routes(app)
    git_routes.add_routes(app)
    lfs_routes.add_routes(app)
    hf_routes.add_routes(app)
    web_routes.add_routes(app)
    return app

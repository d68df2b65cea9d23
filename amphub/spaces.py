"""Releasing spaces: deleting the models and data of spaces unsubscribed or past retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from amphub import db, keys
from amphub.access import space_status
from amphub.git.bridge import run_blocking
from amphub.git.repos import delete_model_repo, repo_path
from amphub.lfs.garbage import collect
from amphub.policy import lifetime

log = logging.getLogger("amphub")
SWEEP_SECONDS = 60


async def delete_model(app: web.Application, model: db.Model, audit: db.Audit) -> list[str]:
    """Delete a model's row and links, then its repository; returns the oids it linked.

    The caller collects those objects that no other model references.
    """
    database = app[keys.DB]
    oids = await db.model_oids(database, model.space_id, model.id)
    await db.delete_model_row(database, model.space_id, model.id, audit)
    path = repo_path(app[keys.CONFIG], model.space_id, model.id)
    lock = app[keys.REPO_LOCKS].for_repo(path)

    def remove() -> None:
        with lock:
            delete_model_repo(path)

    await run_blocking(app, remove)
    return oids


async def release_space(app: web.Application, space_id: str) -> None:
    """Delete every model of a released space and its data, then mark it purged."""
    database = app[keys.DB]
    for model in await db.list_space_models(database, space_id):
        audit = db.Audit("amphub", "delete_model", space_id, model.id, detail="space released")
        await collect(app, await delete_model(app, model, audit))
    await db.mark_space_purged(database, space_id)
    log.info("released space %s", space_id)


async def release_due_spaces(app: web.Application) -> list[str]:
    """Release every space whose retention has ended or that was unsubscribed."""
    released = []
    for space in await db.list_spaces(app[keys.DB]):
        if space.purged_at is None and space_status(app, space) is lifetime.Status.RELEASED:
            await release_space(app, space.id)
            released.append(space.id)
    return released


async def sweep_spaces(app: web.Application) -> AsyncIterator[None]:
    """Release due spaces at start and then every minute."""

    async def loop() -> None:
        while True:
            try:
                await release_due_spaces(app)
            except Exception:
                log.exception("releasing spaces failed")
            await asyncio.sleep(SWEEP_SECONDS)

    task = asyncio.create_task(loop(), name="release spaces")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

"""Refresh schedules of mirrored branches, and the sweep that queues their refreshes."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from amphub import db
from amphub.clock import rfc3339
from amphub.errors import ApiError, BadRequest
from amphub.services.background import every
from amphub.services.hub import Hub
from amphub.services.locks import one_node_at_a_time
from amphub.services.mirror import ACTIVE, COMMIT_ID, mirror_model_id, start_mirror

log = logging.getLogger("amphub")
SWEEP_SECONDS = 60
MAX_REFRESH_HOURS = 24 * 366


@dataclass(frozen=True)
class MirroredRepo:
    """A model mirroring an upstream repo, its refresh schedules and its latest fetches."""

    mirror: db.Mirror
    schedules: list[db.MirrorSchedule]
    last_fetch: db.Task | None  # queued, running or finished
    last_refreshed: db.Task | None  # the latest that succeeded


def check_refresh_hours(hours: int | None, revision: str) -> int | None:
    """Hours between refreshes of `revision`; 0 or None for none; BadRequest past a year."""
    if hours is not None and not 0 <= hours <= MAX_REFRESH_HOURS:
        raise BadRequest(f"refresh_hours must be 0 to {MAX_REFRESH_HOURS}, or null for none")
    if hours and COMMIT_ID.fullmatch(revision):
        raise BadRequest("a commit never changes: refresh a branch or a tag")
    return hours or None


async def schedule_refresh(
    hub: Hub, upstream: db.Upstream, repo: str, revision: str, hours: int | None, by: str
) -> None:
    """Fetch `revision` of `repo` again every `hours` (queued by `by`); None: never again."""
    if hours is None:
        await db.remove_mirror_schedule(hub.db, upstream.name, repo, revision)
        return
    now = hub.clock()
    due = rfc3339(now + timedelta(hours=hours))
    schedule = db.MirrorSchedule(upstream.name, repo, revision, hours, due, by, rfc3339(now))
    await db.set_mirror_schedule(hub.db, schedule)


async def mirrored_repos(hub: Hub, upstream: str) -> list[MirroredRepo]:
    """Every repo mirrored from an upstream, with its schedules and its latest fetches."""
    schedules = await db.mirror_schedules(hub.db, upstream)
    found = []
    for mirror in await db.upstream_mirrors(hub.db, upstream):
        mine = [s for s in schedules if s.repo == mirror.repo]
        last, done = [
            await db.latest_task(hub.db, "mirror", mirror.space_id, mirror.model_id, status=s)
            for s in (None, "succeeded")
        ]
        found.append(MirroredRepo(mirror, mine, last, done))
    return found


async def refresh_due_mirrors(hub: Hub) -> list[db.Task]:
    """Queue a mirror task for each due schedule whose model has none queued or running."""
    now = hub.clock()
    queued = []
    for schedule in await db.due_mirror_schedules(hub.db, rfc3339(now)):
        upstream = await db.UPSTREAMS.get(hub.db, schedule.upstream)
        model = None
        if upstream is not None:
            model_id = mirror_model_id(schedule.repo)
            model = await db.get_model(hub.db, upstream.space_id, model_id)
        if upstream is None or model is None:  # removed since: nothing left to refresh
            await db.remove_mirror_schedule(
                hub.db, schedule.upstream, schedule.repo, schedule.revision
            )
            continue
        fetch = await db.latest_task(hub.db, "mirror", model.space_id, model.id)
        if fetch is not None and fetch.status in ACTIVE:
            continue  # due still: queued once this fetch is over
        try:
            queued.append(
                await start_mirror(
                    hub, upstream, schedule.repo, schedule.revision, schedule.created_by
                )
            )
        except ApiError as exc:  # the space expired, say: tried again at the next refresh
            log.warning(
                "refresh of %s at %s not queued: %s", schedule.repo, schedule.revision, exc.message
            )
        due = now + timedelta(hours=schedule.refresh_hours)
        await db.postpone_mirror_schedule(hub.db, schedule, rfc3339(due))
    return queued


def refreshing_mirrors(hub: Hub) -> contextlib.AbstractAsyncContextManager[None]:
    """Queue the due refreshes of mirrored branches at start and then every minute."""
    sweep = one_node_at_a_time(hub.locks, "mirror-schedules", lambda: refresh_due_mirrors(hub))
    return every(SWEEP_SECONDS, sweep, "refreshing mirrors")

"""Space lifetime and release: deleting the models and data of spaces past their retention."""

from __future__ import annotations

import contextlib
import logging

from amphub import db
from amphub.clock import parse_rfc3339
from amphub.policy import Action, Actor, SpaceTarget, allowed, lifetime
from amphub.services.background import every
from amphub.services.hub import Hub
from amphub.services.locks import one_node_at_a_time
from amphub.services.models import delete_model
from amphub.services.objects import collect

log = logging.getLogger("amphub")
SWEEP_SECONDS = 60


def space_lifetime(hub: Hub, space: db.Space) -> lifetime.Lifetime:
    """A space's lifetime under the server's grace and retention settings."""
    config = hub.config
    expires = parse_rfc3339(space.expires_at) if space.expires_at else None
    return lifetime.Lifetime(expires, config.grace_days, config.retention_days)


def space_status(hub: Hub, space: db.Space) -> lifetime.Status:
    """The space's status now; unsubscribed spaces are released at once."""
    if space.released_at:
        return lifetime.Status.RELEASED
    return space_lifetime(hub, space).status(hub.clock())


async def usable_spaces(hub: Hub, who: Actor, contains: str = "") -> list[db.Space]:
    """The spaces the caller may use, released ones left out; `contains` in id or name."""
    roles = await db.user_space_roles(hub.db, who.name) if who.name else {}
    return [
        space
        for space in await db.list_spaces(hub.db)
        if space_status(hub, space) is not lifetime.Status.RELEASED
        and allowed(who, Action.USE_SPACE, _space_target(space, who, roles))
        and (contains in space.id or contains in space.name.lower())
    ]


def _space_target(space: db.Space, who: Actor, roles: dict[str, str]) -> SpaceTarget:
    granted = {who.name: roles[space.id]} if who.name and space.id in roles else {}
    return SpaceTarget(space.creator, granted)


async def release_space(hub: Hub, space_id: str) -> None:
    """Delete every model of a released space and its data, then mark it purged."""
    for model in await db.list_space_models(hub.db, space_id):
        audit = db.Audit("amphub", "delete_model", space_id, model.id, detail="space released")
        await collect(hub, await delete_model(hub, model, audit))
    await db.mark_space_purged(hub.db, space_id)
    log.info("released space %s", space_id)


async def release_due_spaces(hub: Hub) -> list[str]:
    """Release every space whose retention has ended or that was unsubscribed."""
    released = []
    for space in await db.list_spaces(hub.db):
        if space.purged_at is None and space_status(hub, space) is lifetime.Status.RELEASED:
            await release_space(hub, space.id)
            released.append(space.id)
    return released


def sweeping_spaces(hub: Hub) -> contextlib.AbstractAsyncContextManager[None]:
    """Release due spaces at start and then every minute."""
    sweep = one_node_at_a_time(hub.locks, "spaces", lambda: release_due_spaces(hub))
    return every(SWEEP_SECONDS, sweep, "releasing spaces")

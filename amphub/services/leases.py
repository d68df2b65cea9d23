"""What an upload holds in the tables every node shares, for as long as its node lives.

The reservation an upload keeps, and its claim on the object (garbage collection on any
node leaves a claimed object alone), last one lease at a time: the node renews them while
the upload runs, and those of a node that died lapse within a lease.
"""

from __future__ import annotations

import contextlib
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

from amphub import db
from amphub.clock import rfc3339
from amphub.services.background import every
from amphub.services.hub import Hub

LEASE_SECONDS = 120
RENEW_SECONDS = 30


def lease_end(hub: Hub, seconds: float = LEASE_SECONDS) -> str:
    """When a row held from now on for `seconds` expires, as rows store times."""
    return rfc3339(hub.clock() + timedelta(seconds=seconds))


@contextlib.asynccontextmanager
async def reservation_kept(hub: Hub, space_id: str, oid: str, size: int) -> AsyncIterator[bool]:
    """Keep the object's live reservation while the block runs; yields whether it has one.

    An object some model of the space links already has none. A kept reservation also
    claims the object: its upload has not linked it yet.
    """
    if not await db.keep_reservation(hub.db, space_id, oid, size, lease_end(hub)):
        yield False
        return
    key = (space_id, oid)
    hub.in_flight[key] += 1
    try:
        yield True
    finally:
        hub.in_flight[key] -= 1
        if not hub.in_flight[key]:
            del hub.in_flight[key]


@contextlib.asynccontextmanager
async def claim(hub: Hub, oid: str, *, reserved: bool = False) -> AsyncIterator[None]:
    """Claim an object for the length of a block (claims of one object add up).

    An upload whose reservation is kept (`reserved`) has claimed the object by that already.
    """
    if reserved:
        yield
        return
    claim_id = secrets.token_hex(8)
    await db.insert_claim(hub.db, oid, claim_id, hub.holder, lease_end(hub))
    try:
        yield
    finally:
        await db.delete_claim(hub.db, oid, claim_id)


async def claimed(hub: Hub, oid: str) -> bool:
    """Whether some upload, on any node, may be storing or linking the object now."""
    return await db.object_claimed(hub.db, oid)


async def renew(hub: Hub) -> None:
    """Renew what this node's uploads hold; remove everyone's rows that expired."""
    until = lease_end(hub)
    await db.renew_claims(hub.db, hub.holder, until)
    by_space: defaultdict[str, list[str]] = defaultdict(list)
    for space_id, oid in hub.in_flight:
        by_space[space_id].append(oid)
    for space_id, oids in by_space.items():
        await db.renew_reservations(hub.db, space_id, oids, until)
    await db.delete_expired(hub.db)


def renewing(hub: Hub) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep this node's leases renewed while the server runs."""
    return every(RENEW_SECONDS, lambda: renew(hub), "renewing leases")

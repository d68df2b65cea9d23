"""What an upload holds in the tables every node shares, for as long as its node lives.

Claims on objects (garbage collection on any node leaves a claimed object alone) and the
reservations of uploads in flight carry the node's `holder` and a lease that the node
renews; those of a node that died lapse within one lease.
"""

from __future__ import annotations

import contextlib
import secrets
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
async def claim(hub: Hub, oid: str) -> AsyncIterator[None]:
    """Claim an object for the length of a block (claims of one object add up)."""
    claim_id = secrets.token_hex(8)
    await db.insert_claim(hub.db, oid, claim_id, hub.holder, lease_end(hub))
    try:
        yield
    finally:
        await db.delete_claim(hub.db, oid, claim_id)


async def claimed(hub: Hub, oid: str) -> bool:
    """Whether some upload, on any node, is storing or linking the object now."""
    return await db.object_claimed(hub.db, oid)


async def renew(hub: Hub) -> None:
    """Renew this node's claims and reservations; remove everyone's that expired."""
    await db.renew_held(hub.db, hub.holder, lease_end(hub))
    await db.delete_expired(hub.db)


def renewing(hub: Hub) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep this node's leases renewed while the server runs."""
    return every(RENEW_SECONDS, lambda: renew(hub), "renewing leases")

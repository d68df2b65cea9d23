"""Failed sign-ins counted per client address in the database: every node slows a guesser alike.

A successful sign-in reads the count and writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from amphub import db
from amphub.clock import parse_rfc3339, rfc3339
from amphub.policy import ratelimit
from amphub.services.hub import Hub


async def retry_after(hub: Hub, address: str) -> float:
    """Seconds until the address may try again; 0 when it may now."""
    counted = await db.failed_sign_ins(hub.db, address)
    if counted is None:
        return 0.0
    since, failures = counted
    limit = hub.config.sign_in_limit
    return ratelimit.retry_after(parse_rfc3339(since), failures, hub.clock(), limit)


async def record_failure(hub: Hub, address: str) -> None:
    """Count one more failed attempt from the address; forget windows that are over."""
    over = rfc3339(hub.clock() - timedelta(seconds=ratelimit.WINDOW_SECONDS))
    await db.count_failed_sign_in(hub.db, address, over)
    await db.forget_failed_sign_ins(hub.db, over)

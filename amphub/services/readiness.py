"""Whether a node can serve: its database, object store and repositories answer.

A load balancer asks every few seconds, so each check is one small operation, and one
that hangs (a lost network file system) counts as a failure after `CHECK_SECONDS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from amphub.services.hub import Hub
from amphub.storage.local_objects import usable_folder

CHECK_SECONDS = 5.0


async def unready_reasons(hub: Hub) -> list[str]:
    """Why the node cannot serve now, one sentence a part; empty when it can."""
    checks = {
        "database": hub.db.reachable(),
        "object store": hub.objects.reachable(),
        "repositories": hub.run_blocking(lambda: usable_folder(hub.config.repos_dir)),
    }
    results = await asyncio.gather(*(_within(check) for check in checks.values()))
    return [f"{part}: {reason}" for part, reason in zip(checks, results, strict=True) if reason]


async def _within(check: Awaitable[object]) -> str | None:
    """None when the check passes in time, else why not."""
    try:
        await asyncio.wait_for(check, CHECK_SECONDS)
    except TimeoutError:
        return f"no answer in {CHECK_SECONDS:g} seconds"
    except Exception as exc:  # noqa: BLE001 - any failure makes the node unready
        # Its class only: the answer goes to anyone, and a message may name a path. Not
        # logged either: a balancer asking every few seconds would fill the log.
        return type(exc).__name__
    return None

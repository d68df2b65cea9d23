"""Readiness and the database pools' metrics of a node on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from amphub.http import keys
from tests.conftest import Hub, running_hub
from tests.postgres import PostgreSQL
from tests.test_operations import sample


@pytest.fixture
async def pg_hub(tmp_path: Path, fresh_database: str) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", node="n7", database=fresh_database) as running:
        yield running


def cut_off(postgresql: PostgreSQL, url: str, *, allowed: bool) -> None:
    """Refuse (or allow again) new connections to the hub's database, ending those it has."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(postgresql.url(), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}")
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


async def test_ready_says_the_database_is_unreachable_and_recovers(
    pg_hub: Hub, postgresql: PostgreSQL
):
    hub = pg_hub
    assert (await hub.call("GET", "/-/ready", user=""))[0] == 200
    await asyncio.to_thread(cut_off, postgresql, str(hub.database_target), allowed=False)
    # At once, and the same each time: the database's refusal, not a wait for the pool.
    unready = (503, {"status": "unready", "node": "n7", "reasons": ["database: OperationalError"]})
    assert await hub.call("GET", "/-/ready", user="") == unready
    assert await hub.call("GET", "/-/ready", user="") == unready
    await asyncio.to_thread(cut_off, postgresql, str(hub.database_target), allowed=True)
    assert await hub.call("GET", "/-/ready", user="") == (200, {"status": "ready", "node": "n7"})


async def test_metrics_count_the_database_pools_connections(pg_hub: Hub):
    hub = pg_hub
    database = hub.server.app[keys.HUB].db
    async with database.exclusive("a key held while scraped"):
        status, text = await hub.call("GET", "/-/metrics")
    assert status == 200
    # The test's, and one a background sweep starting may hold.
    assert sample(text, "amphub_database_connections", pool="locks", state="in_use") in (1, 2)
    assert sample(text, "amphub_database_connections", pool="locks", state="waiting") == 0
    # The scrape's own reads: one connection at least, given back or in use.
    in_use = sample(text, "amphub_database_connections", pool="statements", state="in_use")
    idle = sample(text, "amphub_database_connections", pool="statements", state="idle")
    assert in_use + idle >= 1
    assert sample(text, "amphub_database_connections", pool="statements", state="waiting") == 0


async def test_a_restarted_database_fails_no_read_and_no_lock(pg_hub: Hub, postgresql: PostgreSQL):
    hub = pg_hub
    await hub.space_and_model("team", "m1")
    database = hub.server.app[keys.HUB].db
    async with database.exclusive("a lock, so that the locks' pool keeps a connection"):
        # Several reads at once: the pool keeps several connections.
        answers = await asyncio.gather(*(hub.call("GET", "/api/v1/spaces") for _ in range(6)))
    assert [status for status, _ in answers] == [200] * 6
    # As a restart or failover does: every connection of the hub's ends, new ones are taken.
    name = str(hub.database_target).rsplit("/", 1)[1]
    with psycopg.connect(postgresql.url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    for _ in range(8):
        assert (await hub.call("GET", "/api/v1/spaces"))[0] == 200
    assert (await hub.call("DELETE", "/api/v1/models/team/m1"))[0] == 204  # holds its lock
    await hub.space("other")  # a transaction: the pool holds only live connections now

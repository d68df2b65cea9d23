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
    status, body = await hub.call("GET", "/-/ready", user="")
    assert (status, body["status"]) == (503, "unready")
    assert [reason.split(":")[0] for reason in body["reasons"]] == ["database"]
    await asyncio.to_thread(cut_off, postgresql, str(hub.database_target), allowed=True)
    for _ in range(100):
        status, body = await hub.call("GET", "/-/ready", user="")
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert (status, body) == (200, {"status": "ready", "node": "n7"})


async def test_metrics_count_the_database_pools_connections(pg_hub: Hub):
    hub = pg_hub
    database = hub.server.app[keys.HUB].db
    async with database.exclusive("a key held while scraped"):
        status, text = await hub.call("GET", "/-/metrics")
    assert status == 200
    assert sample(text, "amphub_database_connections", pool="locks", state="in_use") == 1
    assert sample(text, "amphub_database_connections", pool="locks", state="waiting") == 0
    # The scrape's own reads: one connection at least, given back or in use.
    in_use = sample(text, "amphub_database_connections", pool="statements", state="in_use")
    idle = sample(text, "amphub_database_connections", pool="statements", state="idle")
    assert in_use + idle >= 1
    assert sample(text, "amphub_database_connections", pool="statements", state="waiting") == 0

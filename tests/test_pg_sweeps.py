"""Background sweeps on several nodes: one node at a time, held by PostgreSQL's lock."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psycopg

from tests.conftest import read_from_outside, running_hub
from tests.test_lfs import oid_of, put_object

# The advisory lock `KeyedLocks.hold(("sweep", "objects"))` takes across the nodes.
SWEEP = "SELECT pg_advisory_{}(hashtextextended('sweep/objects', 0))"


async def test_garbage_collection_waits_for_the_node_already_sweeping(
    tmp_path: Path, fresh_database: str
):
    data = tmp_path / "data"
    payload = os.urandom(4000)
    async with running_hub(data, database=fresh_database) as first:
        await first.space_and_model("team", "m1")
        assert (await put_object(first, payload))[0] == 200
        assert (await first.call("DELETE", "/api/v1/models/team/m1"))[0] == 204
    oid = oid_of(payload)
    linked = "SELECT oid FROM lfs_objects WHERE oid = ?"
    # Left by the deletion: younger than its grace then. Another node sweeps right now.
    assert await read_from_outside(fresh_database, linked, oid) == [(oid,)]
    with psycopg.connect(fresh_database, autocommit=True) as sweeping:
        sweeping.execute(SWEEP.format("lock"))
        async with running_hub(data, database=fresh_database, object_grace_seconds=0):
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            for _ in range(200):  # the new node's sweep at start queues behind the lock
                if (await read_from_outside(fresh_database, waiting))[0][0]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the node swept while another node held the sweep")
            assert await read_from_outside(fresh_database, linked, oid) == [(oid,)]
            sweeping.execute(SWEEP.format("unlock"))
            for _ in range(200):  # its turn now
                if not await read_from_outside(fresh_database, linked, oid):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the node never swept after the other one finished")

"""The tests of several nodes on one data dir, again with their database on PostgreSQL.

What the nodes share (reservations, claims, sign-in limits, sessions, the secret), the
task leases, and the two-process task queue: their own modules' tests, collected here a
second time with the `database` fixture naming a new database of the session's server.
The data-dir secret tests (an older data dir, a restored backup) are SQLite's alone.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.conftest import free_port, read_until, start_server
from tests.test_shared_state import (  # noqa: F401 - collected again
    test_a_reservation_made_through_one_node_counts_on_the_other,
    test_a_session_and_a_transfer_token_of_one_node_work_on_the_other,
    test_failed_sign_ins_through_two_nodes_add_up,
    test_garbage_collection_on_one_node_leaves_an_object_the_other_claims,
    test_two_nodes_starting_together_store_one_secret,
    test_what_a_dead_node_held_lapses_and_a_live_one_renews_it,
)
from tests.test_task_leases import *  # noqa: F403
from tests.test_task_nodes import *  # noqa: F403


@pytest.fixture
def database(fresh_database: str) -> str:
    return fresh_database


async def test_a_node_told_to_stop_right_after_its_start_stops(tmp_path, fresh_database):
    # Its sweeps' first steps wait for connections to PostgreSQL then, and a cancel that
    # met a connection's arrival was lost: the sweep slept on, and the node never ended.
    environ = {**os.environ, "AMPHUB_DATABASE": fresh_database}
    for _ in range(3):
        proc = await start_server(tmp_path / "data", free_port(), env=environ)
        try:
            await read_until(proc, "listening")
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

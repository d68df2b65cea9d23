"""What several nodes of one hub must share: two servers on one data dir, one database.

Quota reservations, claims on objects, failed sign-ins and the signing secret live in the
database, so what one node did is seen by the other at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from amphub import db
from amphub.clock import system_clock
from amphub.http import keys
from amphub.services.leases import LEASE_SECONDS, claim, claimed, renew, reservation_kept
from amphub.services.models import delete_model
from amphub.services.objects import collect
from amphub.services.quota import RESERVATION_SECONDS
from tests.conftest import FakeClock, Hub, read_from_outside, running_hub
from tests.test_cli import amphub_process
from tests.test_lfs import batch, content, no_grace, oid_of, put_object
from tests.test_sync import register_zone
from tests.test_users_api import basic, raw
from tests.test_web import Browser

KIB = 1024


@contextlib.asynccontextmanager
async def two_nodes(
    tmp_path: Path,
    database: str,
    clock: Callable[[], datetime] = system_clock,
    **settings: object,
) -> AsyncIterator[tuple[Hub, Hub]]:
    """Two servers on one data dir, as two nodes of a hub sharing its `database`."""
    data = tmp_path / "data"
    async with (
        running_hub(data, clock, node="a", database=database, **settings) as a,
        running_hub(data, clock, node="b", database=database, **settings) as b,
    ):
        b.admin_key = a.admin_key
        yield a, b


async def test_a_reservation_made_through_one_node_counts_on_the_other(tmp_path, database):
    async with two_nodes(tmp_path, database, quota_unit=64 * KIB) as (a, b):
        await a.space("team", quota=64 * KIB)
        await a.model("team", "m1")
        first, second = os.urandom(40 * KIB), os.urandom(40 * KIB)
        status, answer, _ = await batch(a, "upload", [{"oid": oid_of(first), "size": 40 * KIB}])
        assert "upload" in answer["objects"][0]["actions"], (status, answer)
        # Together the two would overfill the space: the second node refuses its batch.
        status, answer, _ = await batch(b, "upload", [{"oid": oid_of(second), "size": 40 * KIB}])
        assert "space team is over its quota" in str(answer), (status, answer)
        # The upload whose batch went to one node may PUT to the other: its reservation holds.
        assert (await put_object(b, first))[0] == 200
        _, space = await a.call("GET", "/api/v1/spaces/team")
        assert space["used"] >= 40 * KIB
        assert (await put_object(a, second))[0] != 200


async def test_garbage_collection_on_one_node_leaves_an_object_the_other_claims(tmp_path, database):
    async with two_nodes(tmp_path, database) as (a, b):
        node_a, node_b = a.server.app[keys.HUB], b.server.app[keys.HUB]
        no_grace(b)
        await a.space_and_model("team", "m1")
        data = os.urandom(5000)
        assert (await put_object(a, data))[0] == 200
        model = await db.get_model(node_a.db, "team", "m1")
        oids = await delete_model(node_a, model, db.Audit("admin", "delete_model", "team", "m1"))
        assert oids == [oid_of(data)]
        async with claim(node_a, oid_of(data)):
            assert await collect(node_b, oids) == 0
        assert content(a, data) == data
        assert await collect(node_b, oids) == 1
        assert content(a, data) is None


async def test_what_a_dead_node_held_lapses_and_a_live_one_renews_it(tmp_path, database):
    clock = FakeClock()
    async with two_nodes(tmp_path, database, clock, quota_unit=64 * KIB) as (a, b):
        node_a, node_b = a.server.app[keys.HUB], b.server.app[keys.HUB]
        await a.space("team", quota=64 * KIB)
        await a.model("team", "m1")
        oid = "ab" * 32
        assert (await batch(a, "upload", [{"oid": oid, "size": 40 * KIB}]))[0] == 200
        async with (
            reservation_kept(node_a, "team", oid, 40 * KIB) as reserved,
            claim(node_a, oid),
        ):
            assert reserved
            clock.advance(seconds=RESERVATION_SECONDS - 1)  # the batch call's time is nearly up
            await renew(node_a)  # node a lives on
            clock.advance(seconds=LEASE_SECONDS - 1)
            assert await db.reservation_live(node_b.db, "team", oid)
            assert (await batch(b, "upload", [{"oid": "cd" * 32, "size": 40 * KIB}]))[0] == 507
            clock.advance(seconds=2)  # node a renewed nothing since: as if it had died
            assert not await claimed(node_b, oid)
            assert not await db.reservation_live(node_b.db, "team", oid)
            assert (await batch(b, "upload", [{"oid": "cd" * 32, "size": 40 * KIB}]))[0] == 200
            await renew(node_b)  # the next renewal of any node removes what lapsed
            rows = await read_from_outside(
                a.database_target,
                "SELECT oid FROM object_claims UNION ALL SELECT oid FROM reservations",
            )
            assert rows == [("cd" * 32,)]


async def test_failed_sign_ins_through_two_nodes_add_up(tmp_path, database):
    async with two_nodes(tmp_path, database) as (a, b):
        for node in (a, b) * 5:
            assert (await raw(node, "GET", "/api/v1/me", basic("admin", "amp_wrong")))[0] == 401
        for node in (a, b):
            status, _, _ = await raw(node, "GET", "/api/v1/me", f"Bearer {a.admin_key}")
            assert status == 429


async def test_a_session_and_a_transfer_token_of_one_node_work_on_the_other(tmp_path, database):
    async with two_nodes(tmp_path, database) as (a, b):
        await a.space_and_model("team", "m1")
        browser = Browser(a)
        try:
            await browser.sign_in("admin", a.admin_key)
            browser.hub = b
            status, me, _ = await browser.get("/api/v1/me")
            assert (status, json.loads(me)["name"]) == (200, "admin")
        finally:
            await browser.close()
        data = os.urandom(3000)
        _, answer, _ = await batch(a, "upload", [{"oid": oid_of(data), "size": 3000}])
        action = answer["objects"][0]["actions"]["upload"]
        href = action["href"].replace(a.base, b.base)
        async with b.session.put(href, data=data, headers=action.get("header", {})) as resp:
            assert resp.status == 200, await resp.text()


async def _sign_in_and_register_zone(hub: Hub) -> Browser:
    """A signed-in browser, and a zone whose key is sealed under the hub's secret."""
    await register_zone(hub, hub, hub.admin_key)
    browser = Browser(hub)
    await browser.sign_in("admin", hub.admin_key)
    return browser


async def _still_valid(hub: Hub, browser: Browser) -> None:
    """The session cookie signs in, and the zone's sealed key opens."""
    browser.hub = hub
    status, me, _ = await browser.get("/api/v1/me")
    assert status == 200, me
    status, zones = await hub.call("GET", "/api/v1/zones")
    assert (status, [z["name"] for z in zones["zones"]]) == (200, ["eu"]), zones


async def test_a_hub_from_before_keeps_its_secret_and_what_it_signed_and_sealed(tmp_path):
    data = tmp_path / "data"
    async with running_hub(data) as hub:
        browser = await _sign_in_and_register_zone(hub)
        admin_key = hub.admin_key
    try:
        # The data dir as an older amphub left it: the secret in secret.key, none stored.
        with contextlib.closing(sqlite3.connect(data / "amphub.db")) as database, database:
            (value,) = database.execute("SELECT value FROM signing_secrets").fetchone()
            database.execute("DELETE FROM signing_secrets")
        (data / "secret.key").write_bytes(bytes.fromhex(value))
        async with running_hub(data) as hub:
            hub.admin_key = admin_key
            await _still_valid(hub, browser)
    finally:
        await browser.close()
    with contextlib.closing(sqlite3.connect(data / "amphub.db")) as database:
        assert database.execute("SELECT value FROM signing_secrets").fetchall() == [(value,)]


async def test_a_restored_backup_keeps_the_secret(tmp_path):
    data, copy, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    async with running_hub(data) as hub:
        browser = await _sign_in_and_register_zone(hub)
        admin_key = hub.admin_key
        made = await amphub_process("backup", str(copy), "--data", str(data), cwd=tmp_path)
    try:
        assert made.returncode == 0, made.stderr
        back = await amphub_process("restore", str(copy), "--data", str(restored), cwd=tmp_path)
        assert back.returncode == 0, back.stderr
        assert not (restored / "secret.key").exists()  # the database holds it
        async with running_hub(restored) as hub:
            hub.admin_key = admin_key
            await _still_valid(hub, browser)
    finally:
        await browser.close()


async def test_two_nodes_starting_together_store_one_secret(tmp_path, database):
    async with two_nodes(tmp_path, database) as (a, b):
        assert a.server.app[keys.HUB].secret == b.server.app[keys.HUB].secret
    assert not (tmp_path / "data" / "secret.key").exists()

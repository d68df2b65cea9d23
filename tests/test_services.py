"""Services called directly on a hub over a data dir: no HTTP server, no client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amphub import db
from amphub.config import Config
from amphub.errors import Conflict, QuotaExceeded
from amphub.policy import Actor
from amphub.server.app import offline
from amphub.services import accounts
from amphub.services.hub import Hub
from amphub.services.models import create_model, remove_model
from amphub.services.quota import (
    link_reserved,
    push_room,
    reserve_quota,
    room_left,
    space_used,
)
from amphub.services.search import ModelSearch, search_models

KIB = 1024
QUOTA = 64 * KIB


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with offline(Config(data_dir=tmp_path / "data")) as opened:
        for name in ("ada", "bob", "eve"):
            await accounts.create_user(opened.db, name, by="test")
        await db.insert_space(opened.db, "team", "Team", QUOTA, "pay_as_you_go", None, "ada")
        yield opened


def oid(n: int) -> str:
    return f"{n:064x}"


async def test_a_reservation_past_the_quota_is_refused_with_the_sizes(hub: Hub):
    space = await db.get_space(hub.db, "team")
    assert space is not None
    used = await space_used(hub, "team")  # nothing but the empty space
    with pytest.raises(QuotaExceeded) as refused:
        await reserve_quota(hub, space, {oid(1): QUOTA + 1})
    assert "space team is over its quota" in refused.value.message
    assert "0 B used of 64.0 KiB, and this needs 64.0 KiB more" in refused.value.message
    assert await room_left(hub, space) == QUOTA - used


async def test_two_reservations_that_fit_only_alone_cannot_both_pass(hub: Hub):
    space = await db.get_space(hub.db, "team")
    assert space is not None
    half = (await room_left(hub, space)) // 2 + 1
    outcomes = await asyncio.gather(
        reserve_quota(hub, space, {oid(1): half}),
        reserve_quota(hub, space, {oid(2): half}),
        return_exceptions=True,
    )
    assert sum(isinstance(o, QuotaExceeded) for o in outcomes) == 1
    assert await room_left(hub, space) < half


async def test_an_object_the_space_holds_costs_nothing_and_a_link_gives_the_room_back(
    hub: Hub,
):
    await create_model(hub, "team", "m1", "m1", "private", "ada")
    await create_model(hub, "team", "m2", "m2", "private", "ada")
    space = await db.get_space(hub.db, "team")
    assert space is not None
    before = await room_left(hub, space)
    await reserve_quota(hub, space, {oid(1): 10 * KIB})
    assert await room_left(hub, space) == before - 10 * KIB
    await link_reserved(hub, "team", "m1", oid(1), 10 * KIB)
    # Linked: counted once as stored, no longer as reserved.
    assert await room_left(hub, space) == before - 10 * KIB
    assert not await db.reservation_live(hub.db, "team", oid(1))
    # The same object for another model of the space: already counted, nothing reserved.
    await reserve_quota(hub, space, {oid(1): 10 * KIB})
    assert not await db.reservation_live(hub.db, "team", oid(1))
    room, refusal = await push_room(hub, space)
    assert room == before - 10 * KIB
    assert refusal.startswith("push refused: space team is over its quota")


async def test_a_model_id_is_taken_once_and_deleting_frees_its_objects(hub: Hub):
    await create_model(hub, "team", "m1", "m1", "private", "ada")
    assert hub.repos.path("team", "m1").is_dir()
    with pytest.raises(Conflict):
        await create_model(hub, "team", "M1", "again", "private", "bob")
    data = os.urandom(100)
    stored = oid(7)
    await hub.objects.put_group([(stored, data)])
    model = await db.get_model(hub.db, "team", "m1")
    assert model is not None
    await db.link_objects(hub.db, "team", "m1", {stored: len(data)})
    await remove_model(hub, model, "ada")
    await hub.background.drain()
    assert await db.get_model(hub.db, "team", "m1") is None
    assert not hub.repos.path("team", "m1").exists()
    assert await hub.objects.size(stored) is None


async def test_search_finds_only_what_the_caller_may_retrieve(hub: Hub):
    await create_model(hub, "team", "secret", "secret llama", "private", "ada")
    await create_model(hub, "team", "open", "open llama", "public", "ada")
    await create_model(hub, "team", "inside", "inside llama", "internal", "ada")

    async def ids(who: Actor, text: str = "llama") -> list[str]:
        found = await search_models(hub, who, ModelSearch(text=text, sort="name"))
        return [model.id for model, _ in found.result.models]

    assert await ids(Actor()) == ["open"]
    assert await ids(Actor("eve")) == ["inside", "open"]
    assert await ids(Actor("ada")) == ["inside", "open", "secret"]
    assert await ids(Actor("root", admin=True)) == ["inside", "open", "secret"]
    assert await ids(Actor("eve"), "secret") == []


async def test_search_reports_what_the_caller_may_do_with_each_model(hub: Hub):
    await create_model(hub, "team", "m1", "m1", "public", "ada")
    owner = await search_models(hub, Actor("ada"), ModelSearch())
    visitor = await search_models(hub, Actor("eve"), ModelSearch())
    owner_may = {action.value for action in owner.permissions[0]}
    visitor_may = {action.value for action in visitor.permissions[0]}
    assert "delete" in owner_may
    assert "delete" not in visitor_may
    assert "read_files" in visitor_may
    assert owner.result.total == visitor.result.total == 1

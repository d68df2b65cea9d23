"""Snapshots of the console's main screens, so that a layout change is seen in review.

The data is fixed and the server's clock stands still. The one thing that changes from
run to run, the server's port in the header, is masked in the picture. Update with
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import DataTable, Input

from amphub.tui.forms import FormScreen
from amphub.tui.peers import PeersPane
from amphub.tui.spaces import SpacesPane
from amphub.tui.tasks import TasksPane
from amphub.tui.users import UsersPane
from tests.conftest import GIB, FakeClock, Hub, console, push_readme, start_hub, until
from tests.test_tui_models import GPT_CARD, RESNET_CARD

PORT = re.compile(r"127\.0\.0\.1:\d+")


@pytest.fixture
def picture(snapshot):
    """Compare the console's screen with the stored SVG, the server's port masked."""

    def compare(app) -> bool:
        svg = PORT.sub("127.0.0.1:99999", app.export_screenshot())
        return snapshot.use_extension(SVGImageExtension) == svg

    return compare


async def _clocked_hub(tmp_path: Path, clock: FakeClock):
    server, key = await start_hub(tmp_path / "data", clock)
    session = aiohttp.ClientSession()
    return Hub(server, session, key, tmp_path / "data"), server, session


@pytest.fixture
async def accounts(tmp_path: Path):
    """Users, spaces in each billing mode and lifetime status, a zone and a target."""
    clock = FakeClock()
    hub, server, session = await _clocked_hub(tmp_path, clock)
    await hub.user("ada", creator=True)
    await hub.user("bob", admin=True)
    await hub.user("carol")
    await hub.call("PATCH", "/api/v1/users/carol", json={"disabled": True})
    await hub.space("old-team", name="Old team")
    clock.advance(days=35)  # old-team expired five days ago: in its grace period
    await hub.space("vision", name="Vision 团队", quota=30 * GIB, billing_mode="yearly")
    await hub.space("scratch", owner="ada", name="Scratch", billing_mode="pay_as_you_go")
    zone = {"name": "eu-west", "url": "http://127.0.0.1:9", "user": "syncer", "key": "k"}
    await hub.call("POST", "/api/v1/zones", json=zone)
    target = {"name": "serving", "url": "https://infer.example/deploy", "secret": "s"}
    await hub.call("POST", "/api/v1/deploy-targets", json=target)
    yield hub
    await session.close()
    await server.close()


@pytest.fixture
async def catalog(tmp_path: Path):
    """Two models with cards, each scanned once, updated a minute apart (no tie to sort)."""
    clock = FakeClock()
    hub, server, session = await _clocked_hub(tmp_path, clock)
    await hub.space("team")
    await hub.space("lab")
    await hub.model("team", "gpt2", name="gpt2-大")
    await hub.model("lab", "resnet", name="ResNet-50")
    for space, model, card in (("team", "gpt2", GPT_CARD), ("lab", "resnet", RESNET_CARD)):
        await push_readme(hub, tmp_path, space, model, card)
        await hub.call("POST", f"/api/v1/models/{space}/{model}/scans", json={"ref": "master"})
        clock.advance(minutes=1)
    yield hub
    await session.close()
    await server.close()


async def _settled(app, pilot) -> None:
    """Nothing left to draw: no notification, every table's column widths measured."""
    app.clear_notifications()

    def measured() -> bool:
        # A table sizes its columns for new rows when idle; the picture must come after.
        return not any(table._require_update_dimensions for table in app.screen.query(DataTable))

    await until(pilot, measured, "the tables measured")
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def test_users(accounts: Hub, picture):
    async with console(accounts, size=(80, 24)) as (app, pilot):
        table = app.query_one(UsersPane).table
        await until(pilot, lambda: len(table.items) == 4, "the users")
        await _settled(app, pilot)
        assert picture(app)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_spaces(accounts: Hub, picture, size):
    async with console(accounts, size=size) as (app, pilot):
        await pilot.press("2")
        table = app.query_one(SpacesPane).table
        await until(pilot, lambda: len(table.items) == 3, "the spaces")
        await _settled(app, pilot)
        assert picture(app)


async def test_new_space_form(accounts: Hub, picture):
    async with console(accounts, size=(80, 24)) as (app, pilot):
        await pilot.press("2", "n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        for line in app.screen.query(Input):
            line.cursor_blink = False
        await _settled(app, pilot)
        assert picture(app)


@pytest.mark.parametrize("tab", ["5", "6"])
async def test_zones_and_targets(accounts: Hub, picture, tab: str):
    async with console(accounts, size=(80, 24)) as (app, pilot):
        await pilot.press(tab)
        pane = app.query_one("#zones" if tab == "5" else "#targets", PeersPane)
        await until(pilot, lambda: pane.peers, "the list")
        await _settled(app, pilot)
        assert picture(app)


async def test_models(catalog: Hub, picture):
    async with console(catalog) as (app, pilot):
        await pilot.press("3")
        table = app.query_one("#models-table")
        await until(pilot, lambda: len(table.items) == 2, "the models")
        await _settled(app, pilot)
        assert picture(app)


async def test_tasks(catalog: Hub, picture):
    async def both_done() -> bool:
        _, body = await catalog.call("GET", "/api/v1/tasks")
        return [task["status"] for task in body["tasks"]] == ["succeeded", "succeeded"]

    async with console(catalog) as (app, pilot):
        # Shown only when done: a column keeps the width of the longest message it showed.
        await until(pilot, both_done, "both scans done")
        await pilot.press("4")
        pane = app.query_one(TasksPane)
        await until(pilot, lambda: len(pane.tasks) == 2, "the tasks")
        await _settled(app, pilot)
        assert picture(app)

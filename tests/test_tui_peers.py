"""The console's zones and deploy targets tabs, driven by keys, checked through the API."""

from __future__ import annotations

import socket

import pytest
from textual import events

from amphub.tui.forms import ConfirmScreen, FormScreen
from amphub.tui.messages import PeersChanged, TaskStarted
from amphub.tui.peers import PeersPane, UpstreamsPane
from amphub.tui.tasks import TasksPane
from tests.conftest import Hub, console, posted, until, wait_task

TABS = [
    ("5", "zones", "zones", ["eu", "https://eu.example", "syncer", "zone-key"]),
    ("6", "targets", "deploy-targets", ["serving", "https://infer.example/deploy", "s3cret"]),
]


@pytest.mark.parametrize(("tab", "pane_id", "path", "typed"), TABS)
async def test_add_and_remove(hub: Hub, tab: str, pane_id: str, path: str, typed: list[str]):
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await pilot.press(tab)
        pane = app.query_one(f"#{pane_id}", PeersPane)
        await until(pilot, lambda: pane.loaded, "the list")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        for value in typed:
            await pilot.press(*value, "tab")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: typed[0] in pane.peers, "the new one listed")
        _, listed = await hub.call("GET", f"/api/v1/{path}")
        (found,) = next(iter(listed.values()))
        assert (found["name"], found["url"]) == (typed[0], typed[1])
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: not pane.peers, "the list empty")
    _, listed = await hub.call("GET", f"/api/v1/{path}")
    assert next(iter(listed.values())) == []
    changes = [(m.kind, m.name, m.added) for m in posted(messages, PeersChanged)]
    assert changes == [(path, typed[0], True), (path, typed[0], False)]


async def test_a_bad_url_is_refused_with_the_servers_sentence(hub: Hub):
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await pilot.press("5")
        pane = app.query_one("#zones", PeersPane)
        await until(pilot, lambda: pane.loaded, "the list")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        for value in ("eu", "ftp://eu", "syncer", "k"):
            await pilot.press(*value, "tab")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.error, "the refusal")
        assert app.screen.error == (
            "400 bad_request: url must be an http:// or https:// address, not 'ftp://eu'"
        )
        assert isinstance(app.screen, FormScreen)
        assert pane.peers == {}
    assert (await hub.call("GET", "/api/v1/zones"))[1] == {"zones": []}


async def test_the_zones_table_says_whether_each_zone_answers(hub: Hub):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    zones = [("here", hub.base, "admin", hub.admin_key), ("gone", closed_url, "syncer", "k")]
    for name, url, user, key in zones:
        body = {"name": name, "url": url, "user": user, "key": key}
        assert (await hub.call("POST", "/api/v1/zones", json=body))[0] == 201
    async with console(hub) as (app, pilot):
        await pilot.press("5")
        pane = app.query_one("#zones", PeersPane)
        await until(pilot, lambda: pane.loaded, "the list")
        reachable = {name: str(pane.table.get_cell(name, "answers")) for name, *_ in zones}
    assert reachable["here"] == "answers"
    assert reachable["gone"] == "no answer: connection refused"


async def test_an_upstream_is_added_mirrored_from_and_removed(hub: Hub):
    # The hub is its own upstream: its public acme/gpt is mirrored as hf/acme__gpt.
    await hub.space_and_model("acme", "gpt", visibility="public")
    await hub.space("hf")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await pilot.press("7")
        pane = app.query_one("#upstreams", UpstreamsPane)
        await until(pilot, lambda: pane.loaded, "the list")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        assert app.screen.query_one("#token").password  # masked as it is typed
        await pilot.press(*"up", "tab")
        app.focused.post_message(events.Paste(hub.base))  # pasted, as a URL usually is
        await pilot.press("tab", *"hf", "tab")  # no token: an optional field left empty
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "up" in pane.peers, "the new one listed")
        row = [str(cell) for cell in pane.table.get_row("up")]
        assert row[:5] == ["up", hub.base, "hf", "internal", "none"]
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the mirror form")
        await pilot.press(*"acme/gpt", "tab", "tab", "backspace", "4")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: posted(messages, TaskStarted), "the task")
        (started,) = posted(messages, TaskStarted)
        assert (started.task["kind"], started.task["model"]) == ("mirror", "hf/acme__gpt")
        assert (await wait_task(hub, started.task["id"]))["status"] == "succeeded"
        await pilot.press("4")  # the tasks tab shows the mirror's progress as any task's
        tasks = app.query_one(TasksPane)
        task_id = str(started.task["id"])
        await until(pilot, lambda: tasks.tasks.get(task_id, {}).get("status") == "succeeded", "it")
        assert tasks.tasks[task_id]["kind"] == "mirror"
        await pilot.press("7")
        _, listed = await hub.call("GET", "/api/v1/upstreams/up/mirrors")
        (mirror,) = listed["mirrors"]
        assert [(s["revision"], s["refresh_hours"]) for s in mirror["schedules"]] == [("main", 4)]
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: not pane.peers, "the list empty")
    assert (await hub.call("GET", "/api/v1/upstreams"))[1] == {"upstreams": []}
    changes = [(m.kind, m.name, m.added) for m in posted(messages, PeersChanged)]
    assert changes == [("upstreams", "up", True), ("upstreams", "up", False)]

"""The console's tasks tab and task screen, driven by keys, checked through the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.widgets import Select

from amphub.tui.forms import ConfirmScreen
from amphub.tui.messages import TaskCanceled
from amphub.tui.task_screen import TaskScreen
from amphub.tui.tasks import TasksPane
from tests.conftest import Hub, console, free_port, posted, push, running_hub, shown, until

RISKY = "import os\n\nos.system(input())\nresult = eval(input())\n"


async def _tasks(app, pilot) -> TasksPane:
    await pilot.press("4")
    pane = app.query_one(TasksPane)
    await until(pilot, lambda: pane.loaded, "the tasks")
    return pane


async def _task(hub: Hub, task_id: int) -> dict:
    status, task = await hub.call("GET", f"/api/v1/tasks/{task_id}")
    assert status == 200, task
    return task


async def test_live_list_follows_a_scan_to_its_end(hub: Hub):
    await hub.space_and_model("team", "m1")
    async with console(hub) as (app, pilot):
        pane = await _tasks(app, pilot)
        assert pane.table.row_count == 0
        _, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
        key = str(task["id"])
        # No key is pressed: the tab asks again on its own.
        await until(pilot, lambda: key in pane.tasks, "the new task listed")
        await until(pilot, lambda: pane.tasks[key]["status"] == "succeeded", "the scan done")
        row = [str(cell) for cell in pane.table.get_row(key)]
        assert row[1:6] == ["scan", "team/m1", "master", "succeeded", "safe"]
        assert row[6] == "██████████ 100%"


async def test_the_kind_filter_offers_mirror_tasks(hub: Hub):
    await hub.space_and_model("team", "m1")
    _, scan = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    async with console(hub) as (app, pilot):
        pane = await _tasks(app, pilot)
        await until(pilot, lambda: str(scan["id"]) in pane.tasks, "the scan listed")
        await pilot.press("f", "enter", "down", "down", "down", "down", "enter")
        await until(pilot, lambda: not pane.tasks, "no mirror task listed")
        assert app.query_one("#tasks-kind", Select).value == "mirror"


async def test_details_show_scan_findings_per_file(hub: Hub, tmp_path: Path):
    await hub.space_and_model("team", "m1")
    await push(tmp_path / "push-team-m1", {"train.py": RISKY}, clone=hub.remote("team", "m1"))
    _, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    async with console(hub) as (app, pilot):
        pane = await _tasks(app, pilot)
        key = str(task["id"])
        await until(pilot, lambda: key in pane.tasks, "the scan listed")
        await until(pilot, lambda: pane.tasks[key]["status"] == "succeeded", "the scan done")
        # A scan that found something is not just "succeeded": its verdict is beside it.
        verdict = str(pane.table.get_row(key)[pane.table.shown_keys.index("verdict")])
        assert verdict in ("suspicious", "unsafe")
        pane.table.move_cursor(row=pane.table.get_row_index(key))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TaskScreen), "the task screen")
        screen = app.screen
        await until(
            pilot,
            lambda: screen.current and screen.current["status"] == "succeeded",
            "the scan to finish on screen",
        )
        result = shown(screen.query_one("#task-result"))
        lines = {line.split()[0]: line for line in result.splitlines() if line.strip()}
        assert "safe" in lines["README.md"]
        assert "suspicious" in lines["train.py"] or "unsafe" in lines["train.py"]
        assert "os.system" in result and "eval" in result
        assert "Overall" in result and "3 files" in result
        facts = shown(screen.query_one("#task-facts"))
        assert "succeeded" in facts and re.search(rf"Verdict +{verdict}", facts)


@pytest.fixture
async def busy_hub(tmp_path: Path):
    """One task worker, kept busy by a sync to a zone that is not there."""
    async with running_hub(tmp_path / "data", workers=1) as hub:
        await hub.space_and_model("team", "m1")
        zone = {"name": "gone", "url": f"http://127.0.0.1:{free_port()}", "user": "u", "key": "k"}
        assert (await hub.call("POST", "/api/v1/zones", json=zone))[0] == 201
        yield hub


async def test_filter_and_cancel_queued_and_running_tasks(busy_hub: Hub):
    hub = busy_hub
    path = "/api/v1/models/team/m1"
    _, sync = await hub.call("POST", f"{path}/syncs", json={"ref": "master", "zone": "gone"})
    _, scan = await hub.call("POST", f"{path}/scans", json={"ref": "master"})
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        pane = await _tasks(app, pilot)
        await until(pilot, lambda: len(pane.tasks) == 2, "both tasks")
        await until(pilot, lambda: pane.tasks[str(sync["id"])]["status"] == "running", "sync runs")
        assert pane.tasks[str(scan["id"])]["status"] == "queued"
        await pilot.press("f", "enter", "down", "enter")  # kind: scan
        await until(pilot, lambda: list(pane.tasks) == [str(scan["id"])], "only the scan")
        pane.focus_list()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: pane.tasks[str(scan["id"])]["status"] == "canceled", "shown")
        assert (await _task(hub, scan["id"]))["status"] == "canceled"
        await pilot.press("f", "enter", "up", "enter")  # kind: any
        await until(pilot, lambda: len(pane.tasks) == 2, "both again")
        pane.focus_list()
        pane.table.move_cursor(row=pane.table.get_row_index(str(sync["id"])))
        await pilot.press("x", "y")
        running = str(sync["id"])
        # A running task stops at its next step: here after its next retry.
        await until(pilot, lambda: pane.tasks[running]["status"] == "canceled", "sync stopped")
    assert (await _task(hub, sync["id"]))["status"] == "canceled"
    assert [m.task["id"] for m in posted(messages, TaskCanceled)] == [scan["id"], sync["id"]]

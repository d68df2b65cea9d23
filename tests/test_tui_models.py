"""The console's models tab and model screen, driven by keys, checked through the API."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console as RichConsole
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownH1

from amphub.tui.forms import FormScreen
from amphub.tui.members import MembersScreen
from amphub.tui.messages import ModelChanged, TaskStarted
from amphub.tui.model_screen import ModelScreen, replicas
from amphub.tui.models import ModelsPane, parse_filter
from tests.conftest import Hub, console, posted, push_readme, shown, until

GPT_CARD = """---
Training framework: [PyTorch, Transformers]
Job type:
  Type: Natural language processing
  Algorithm: Text Generation
Other tag: [exbert]
Number of parameters: 1700000000
Open-source protocol: mit
Training data:
- Dataset: {Name: WebText, Permission: Public, Link: https://example.com/webtext}
---
# gpt2
"""
RESNET_CARD = (
    "---\nlibrary_name: timm\npipeline_tag: image-classification\nlicense: apache-2.0\n---\n"
)


async def seed(hub: Hub, tmp_path: Path) -> None:
    await hub.space("team")
    await hub.space("lab")
    await hub.model("team", "gpt2", name="gpt2-大")
    await hub.model("lab", "resnet", name="ResNet-50")
    for space, model, card in (("team", "gpt2", GPT_CARD), ("lab", "resnet", RESNET_CARD)):
        await push_readme(hub, tmp_path, space, model, card)


async def _models(app, pilot):
    await pilot.press("3")
    table = app.query_one(ModelsPane).table
    await until(pilot, lambda: table.loaded, "the models")
    return table


async def _open_model(app, pilot, key: str) -> ModelScreen:
    table = await _models(app, pilot)
    await until(pilot, lambda: key in table.items, f"{key} listed")
    table.move_cursor(row=table.get_row_index(key))
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ModelScreen), "the model screen")
    screen = app.screen
    await until(pilot, lambda: screen.model is not None, "the model loaded")
    return screen


def test_filter_words_become_search_parameters():
    assert parse_filter('space:team framework:PyTorch "task_type:Natural language" gpt big') == {
        "space": "team",
        "framework": "PyTorch",
        "task_type": "Natural language",
        "q": "gpt big",
    }
    assert parse_filter("weird:thing") == {"q": "weird:thing"}


async def test_list_and_filter_by_space_and_card_fields(hub: Hub, tmp_path: Path):
    await seed(hub, tmp_path)
    async with console(hub) as (app, pilot):
        table = await _models(app, pilot)
        await until(pilot, lambda: sorted(table.items) == ["lab/resnet", "team/gpt2"], "both")
        assert str(table.get_row("team/gpt2")[4]) == "PyTorch, Transformers"
        for line, expected in (
            ("space:lab", ["lab/resnet"]),
            ("framework:PyTorch", ["team/gpt2"]),
            ('"algorithm:Text Generation"', ["team/gpt2"]),
            ("license:apache-2.0", ["lab/resnet"]),
            ("resnet", ["lab/resnet"]),
        ):
            await pilot.press("slash", "ctrl+a", "ctrl+k", *line, "enter")
            await until(pilot, lambda e=expected: sorted(table.items) == e, line)
        summary = str(app.query_one("#models-count").content)
        assert summary == "1 model"


async def test_details_show_card_refs_size_and_scan(hub: Hub, tmp_path: Path):
    await seed(hub, tmp_path)
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        screen = await _open_model(app, pilot, "team/gpt2")
        card = shown(screen.query_one("#model-card"))
        assert "PyTorch, Transformers" in card
        assert "Natural Language Processing / Text Generation" in card
        assert "1,700,000,000" in card and "WebText" in card and "mit" in card
        assert "master" in shown(screen.query_one("#model-refs"))
        assert "never scanned" in shown(screen.query_one("#model-scan"))
        assert "not replicated" in shown(screen.query_one("#model-replicas"))
        facts = shown(screen.query_one("#model-facts"))
        assert f"{hub.base}/team/gpt2.git" in facts
        assert re.search(r"Size +[0-9.]+ (B|KiB|MiB)", facts), facts
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the scan form")
        await pilot.press("enter")
        await until(pilot, lambda: posted(messages, TaskStarted), "the scan queued")
        (started,) = posted(messages, TaskStarted)

        async def scanned() -> bool:
            _, task = await hub.call("GET", f"/api/v1/tasks/{started.task['id']}")
            return task["status"] == "succeeded"

        await until(pilot, scanned, "the scan to finish")
        await pilot.press("r")
        await until(pilot, lambda: "safe" in shown(screen.query_one("#model-scan")), "the scan")
        await pilot.press("e")
        readme = screen.query_one("#model-readme", Markdown)
        await until(pilot, lambda: readme.query(MarkdownH1), "the README rendered")
        assert readme.query_one(MarkdownH1).source.strip() == "# gpt2"
        assert "---" not in readme.source.split("\n", 1)[0]  # the front matter is left out
    _, tasks = await hub.call("GET", "/api/v1/tasks?kind=scan")
    assert [(t["model"], t["ref"]) for t in tasks["tasks"]] == [("team/gpt2", "master")]


async def test_visibility_and_members(hub: Hub, tmp_path: Path):
    await seed(hub, tmp_path)
    await hub.user("bob")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        screen = await _open_model(app, pilot, "lab/resnet")
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the visibility form")
        await pilot.press("enter", "down", "down", "enter", "ctrl+s")  # private → public
        await until(pilot, lambda: posted(messages, ModelChanged), "the change")
        await until(pilot, lambda: "public" in shown(screen.query_one("#model-facts")), "shown")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MembersScreen), "the members")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the member form")
        form = app.screen
        assert form.query_one("#role").value == "user"  # as on the web, unless chosen
        await pilot.press(*"bo", "right")  # the name completed from the server's users
        assert form.query_one("#user").value == "bob"
        await pilot.press("tab", "enter", "up", "enter", "ctrl+s")  # developer
        await until(pilot, lambda: isinstance(app.screen, MembersScreen), "back")
        members = app.screen.query_one("#members-table")
        await until(pilot, lambda: members.row_count == 2, "bob listed")
    _, model = await hub.call("GET", "/api/v1/models/lab/resnet")
    assert model["visibility"] == "public"
    _, body = await hub.call("GET", "/api/v1/models/lab/resnet/members")
    assert {"user": "bob", "role": "developer"} in body["members"]


async def test_sync_and_deploy_queue_tasks(hub: Hub, tmp_path: Path):
    await seed(hub, tmp_path)
    zone = {"name": "eu", "url": "http://127.0.0.1:9", "user": "syncer", "key": "k"}
    assert (await hub.call("POST", "/api/v1/zones", json=zone))[0] == 201
    target = {"name": "serving", "url": "http://127.0.0.1:9/deploy", "secret": "s"}
    assert (await hub.call("POST", "/api/v1/deploy-targets", json=target))[0] == 201
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        table = await _models(app, pilot)
        await until(pilot, lambda: "team/gpt2" in table.items, "gpt2 listed")
        table.move_cursor(row=table.get_row_index("team/gpt2"))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the sync form")
        await pilot.press("enter")
        await until(pilot, lambda: len(posted(messages, TaskStarted)) == 1, "the sync queued")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the deploy form")
        await pilot.press("tab", "tab", "ctrl+a", "ctrl+k", *"chat", "tab", "ctrl+a", "ctrl+k")
        await pilot.press("2", "tab", *'{"gpu": 1}', "enter")
        await until(pilot, lambda: len(posted(messages, TaskStarted)) == 2, "the deploy queued")
    sync, deploy = (m.task for m in posted(messages, TaskStarted))
    assert (sync["kind"], sync["model"], sync["ref"]) == ("sync", "team/gpt2", "master")
    assert (deploy["kind"], deploy["model"], deploy["ref"]) == ("deploy", "team/gpt2", "master")
    _, tasks = await hub.call("GET", "/api/v1/tasks")
    assert {t["kind"] for t in tasks["tasks"]} == {"sync", "deploy"}


def test_a_replica_behind_says_so_in_words():
    model = {
        "replicas": [
            {"zone": "eu", "ref": "master", "commit": "a" * 40, "synced_at": None, "behind": True},
            {"zone": "us", "ref": "v1", "commit": "b" * 40, "synced_at": None, "behind": False},
        ]
    }
    out = RichConsole(width=100, record=True, file=io.StringIO())
    out.print(replicas(model))
    text = out.export_text()
    assert re.search(r"eu .* behind", text) and re.search(r"us .* up to date", text)
    assert "True" not in text and "False" not in text

"""The console as a whole: header, lost and regained connection, refusals, palette, CLI."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from textual.notifications import Notify

from amphub import db
from amphub.cli import main
from amphub.config import Config
from amphub.server.app import create_app
from amphub.services.accounts import create_user
from amphub.tui.commands import ActionCommands, bindings_of
from amphub.tui.forms import FormScreen
from amphub.tui.header import ConsoleHeader
from amphub.tui.help import HelpScreen
from amphub.tui.messages import ConnectionLost, ConnectionRegained
from amphub.tui.model_screen import ModelScreen
from amphub.tui.users import UsersPane
from tests.conftest import Hub, console, posted, shown, start_hub, until


def _header(app) -> str:
    return str(app.screen.query_one(ConsoleHeader).render())


def _first_hit(app) -> str | None:
    hits = app.screen.query("CommandList")
    if not hits or not hits.first().option_count:
        return None
    return hits.first().get_option_at_index(0).hit.text


def _notes(messages: list) -> list[tuple[str, str]]:
    return [(m.notification.title, m.notification.message) for m in posted(messages, Notify)]


async def test_header_names_the_server_and_the_user(hub: Hub):
    async with console(hub) as (app, pilot):
        assert _header(app) == f"amphub · {hub.base} · admin (administrator) · ● connected"


async def test_connection_lost_and_regained_without_restarting(tmp_path: Path):
    data = tmp_path / "data"
    server, key = await start_hub(data)
    port = server.port
    messages: list = []
    async with aiohttp.ClientSession() as session:
        hub = Hub(server, session, key, data)
        hub.url = hub.base  # the address stays when the server behind it goes
        async with console(hub, messages=messages) as (app, pilot):
            await server.close()
            await pilot.press("r")
            await until(pilot, lambda: app.connected is False, "the loss noticed")
            assert _header(app).endswith("✕ connection lost, retrying")
            assert ("connection lost", f"{hub.base} does not answer") in [
                (title, message.split(" (")[0]) for title, message in _notes(messages)
            ]
            # The server comes back on the same address, with a user made while it was away
            # (offline: made through the API, the console might list users before it exists).
            async with db.opened(Config(data_dir=data).db_path) as database:
                await create_user(database, "while-away", by="admin")
            server = TestServer(create_app(Config(data_dir=data)), host="127.0.0.1", port=port)
            await server.start_server()
            table = app.query_one(UsersPane).table
            await until(pilot, lambda: app.connected, "the connection regained")
            await until(pilot, lambda: "while-away" in table.items, "the list loaded again")
            assert _header(app).endswith("● connected")
            assert ("connection regained", f"{hub.base} answers again") in _notes(messages)
    await server.close()
    assert len(posted(messages, ConnectionLost)) == 1
    assert len(posted(messages, ConnectionRegained)) == 1


async def test_a_user_who_is_not_an_administrator_is_told(hub: Hub):
    key = await hub.user("bob")
    messages: list = []
    async with console(hub, key=key, messages=messages, signed_in=False) as (app, pilot):
        await until(pilot, lambda: len(_notes(messages)) == 2, "two notifications")
        assert _header(app) == f"amphub · {hub.base} · bob · ● connected"
    assert sorted(_notes(messages)) == [
        ("", "bob is not an administrator: users, zones, targets and upstreams are refused"),
        ("403 forbidden", "you may not manage users"),
    ]


async def test_a_wrong_key_is_shown_until_a_good_one_is_entered(hub: Hub):
    messages: list = []
    async with console(hub, key="amp_wrong", messages=messages, signed_in=False) as (app, pilot):
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the offer of a key")
        form = app.screen
        assert form.title_text == "Sign in"
        assert "refused the key: authentication failed" in form.note
        await pilot.press(*"amp_still_wrong", "enter")
        await until(pilot, lambda: form.error, "the refusal in the form")
        assert form.error.startswith("401 unauthorized: authentication failed")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FormScreen), "signed out")
        # The refusal stays, in place of lists that could only come back empty.
        assert _header(app).startswith(f"amphub · {hub.base} · ✕ key refused")
        signed_out = app.screen.query_one("#signed-out")
        assert signed_out.display and not app.screen.query_one("#tabs").display
        assert "Press ctrl+k to enter an administrator's key" in shown(signed_out)
        await pilot.press("2", "1", "n")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        await pilot.press("ctrl+k")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the offer again")
        await pilot.press(*hub.admin_key, "enter")
        await until(pilot, lambda: app.active_pane.loaded, "the list loaded")
        assert _header(app) == f"amphub · {hub.base} · admin (administrator) · ● connected"
        assert app.screen.query_one("#tabs").display and not signed_out.display
        assert not app.check_action("enter_key", ())
    assert not [m for m in posted(messages, Notify) if m.notification.severity == "error"]


async def test_palette_has_an_entry_for_every_action(hub: Hub):
    await hub.space_and_model("team", "m1")
    async with console(hub) as (app, pilot):
        hits = {hit.text: hit.help async for hit in ActionCommands(app.screen).discover()}
        entries = list(hits)
        for pane in app.panes:
            for binding in bindings_of(pane):
                assert f"{app.tab_title(pane)}: {binding.description}" in entries
        # Each entry says its key, so the palette teaches the keys.
        assert hits["Spaces: New"].startswith("n · Create a space")
        assert hits["Console: Keys"].startswith("? · ")
        assert "Console: Spaces tab" in entries and "Console: Quit" in entries
        assert hits["Upstreams: Mirror a repo"].startswith("m · Mirror a repo of the selected")
        await pilot.press("ctrl+p")
        await pilot.press(*"spaces new")
        await until(pilot, lambda: _first_hit(app) == "Spaces: New", "the palette's hit")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        assert app.screen.title_text == "New space"
        await pilot.press("escape")
        app.push_screen(ModelScreen("team", "m1"))
        await until(pilot, lambda: isinstance(app.screen, ModelScreen), "the model screen")
        entries = [hit.text async for hit in ActionCommands(app.screen).discover()]
        assert {"Model: Scan", "Model: Sync", "Model: Deploy", "Model: Members"} <= set(entries)


async def test_question_mark_lists_every_key_of_the_screen(hub: Hub):
    await hub.space_and_model("team", "m1")
    async with console(hub) as (app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the keys")
        sections = dict(app.screen.sections())
        for pane in app.panes:
            listed = sections[f"{app.tab_title(pane)} tab"]
            for binding in bindings_of(pane):
                assert (app.get_key_display(binding), binding.description) in listed
        assert ("n", "New") in sections["Users tab"]
        assert {("n", "Add"), ("x", "Remove"), ("m", "Mirror a repo")} <= set(
            sections["Upstreams tab"]
        )
        assert ("enter", "Open the selected line") in sections["Models tab"]
        assert {("?", "Keys"), ("^p", "Find an action by name"), ("2", "Spaces tab")} <= set(
            sections["Everywhere"]
        )
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "closed")
        app.push_screen(ModelScreen("team", "m1"))
        await until(pilot, lambda: isinstance(app.screen, ModelScreen), "the model screen")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the model's keys")
        assert {("s", "Scan"), ("e", "README"), ("esc", "Back")} <= set(
            dict(app.screen.sections())["Model"]
        )


def test_cli_needs_a_key(capsys):
    assert main(["tui", "--url", "http://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err == (
        "amphub: give an administrator's key with --key or AMPHUB_KEY\n"
    )

"""The console's users tab, driven by keys, checked through the API."""

from __future__ import annotations

import pytest
from textual.notifications import Notify
from textual.widgets import Input

from amphub.tui.forms import ConfirmScreen, FormScreen, KeyScreen
from amphub.tui.messages import KeyRegenerated, UserChanged, UserCreated
from amphub.tui.users import UsersPane
from tests.conftest import Hub, console, posted, shown, until


async def _select(app, pilot, name: str) -> None:
    table = app.query_one(UsersPane).table
    await until(pilot, lambda: name in table.items, f"{name} listed")
    table.move_cursor(row=table.get_row_index(name))
    table.focus()
    await pilot.pause()


async def test_create_user_shows_its_key_once_and_the_key_works(hub: Hub):
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        await pilot.press(*"ada.l", "tab", "space", "tab", "space", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, KeyScreen), "the key")
        key = app.screen.key
        assert str(app.screen.query_one("#key").render()) == key
        await pilot.press("c")
        assert app.clipboard == key
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, KeyScreen), "the key closed")
        assert "ada.l" in app.query_one(UsersPane).table.items
    status, me = await hub.call("GET", "/api/v1/me", key=key)
    assert (status, me["name"], me["admin"], me["creator"]) == (200, "ada.l", True, True)
    assert [m.user["name"] for m in posted(messages, UserCreated)] == ["ada.l"]


async def test_toggles_disable_admin_and_creator(hub: Hub):
    await hub.user("bob")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await _select(app, pilot, "bob")
        await pilot.press("a", "y", "c", "d", "y")
        await until(pilot, lambda: len(posted(messages, UserChanged)) == 3, "3 changes")
        _, users = await hub.call("GET", "/api/v1/users")
        bob = next(u for u in users["users"] if u["name"] == "bob")
        assert (bob["admin"], bob["creator"], bob["disabled"]) == (True, True, True)
        assert [str(cell) for cell in app.query_one(UsersPane).table.get_row("bob")[1:4]] == [
            "✓"
        ] * 3
        status, _ = await hub.call("GET", "/api/v1/me", user="bob")
        assert status == 403  # disabled
        await pilot.press("d", "y", "a", "y")
        await until(pilot, lambda: len(posted(messages, UserChanged)) == 5, "5 changes")
    status, me = await hub.call("GET", "/api/v1/me", user="bob")
    assert (status, me["admin"], me["creator"]) == (200, False, True)


@pytest.mark.parametrize(
    ("key", "question"),
    [
        ("a", "Make bob an administrator? They may then do everything here."),
        ("d", "Disable bob? Their key and tokens stop working at once."),
    ],
)
async def test_admin_and_disable_are_asked_first_and_no_changes_nothing(hub: Hub, key, question):
    await hub.user("bob")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await _select(app, pilot, "bob")
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert app.screen.question == question
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "no")
        await pilot.pause()
    assert posted(messages, UserChanged) == []
    status, me = await hub.call("GET", "/api/v1/me", user="bob")
    assert (status, me["admin"]) == (200, False)


async def test_regenerate_key_after_confirming(hub: Hub):
    old = await hub.user("carol")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        await _select(app, pilot, "carol")
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "no")
        assert (await hub.call("GET", "/api/v1/me", key=old))[0] == 200
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, KeyScreen), "the new key")
        new = app.screen.key
        await pilot.press("escape")
    assert (await hub.call("GET", "/api/v1/me", key=old))[0] == 401
    assert (await hub.call("GET", "/api/v1/me", key=new))[0] == 200
    assert [m.name for m in posted(messages, KeyRegenerated)] == ["carol"]


async def test_filter_by_name(hub: Hub):
    for name in ("ann", "anna", "bert"):
        await hub.user(name)
    async with console(hub) as (app, pilot):
        table = app.query_one(UsersPane).table
        await until(pilot, lambda: len(table.items) == 4, "every user")
        await pilot.press("slash", *"ann", "enter")
        await until(pilot, lambda: sorted(table.items) == ["ann", "anna"], "the filtered list")
        assert table.has_focus


async def test_a_refused_form_stays_open_with_the_error_and_keeps_the_keys(hub: Hub):
    await hub.user("dora")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        table = app.query_one(UsersPane).table
        await until(pilot, lambda: "dora" in table.items, "dora listed")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        form = app.screen
        await pilot.press(*"dora", "enter")
        await until(pilot, lambda: form.error, "the refusal")
        assert form.error == "409 conflict: user dora exists already"
        assert app.screen is form
        # The keys typed next go to the form, not to the list as commands.
        await pilot.press("a", "d")
        await pilot.pause()
        assert app.screen is form
        assert form.query_one("#name", Input).value == "doraad"
        await pilot.press("backspace", "backspace", *"2", "enter")
        await until(pilot, lambda: isinstance(app.screen, KeyScreen), "the key")
    assert [m.user["name"] for m in posted(messages, UserCreated)] == ["dora2"]
    assert posted(messages, UserChanged) == []
    assert [m for m in posted(messages, Notify) if m.notification.severity == "error"] == []


async def test_an_empty_required_field_is_refused_in_the_form(hub: Hub):
    async with console(hub) as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.error, "the refusal")
        assert app.screen.error == "Name is needed"
        assert "ctrl+s: Create user" in shown(app.screen.query_one(".dialog-hint"))

"""The console's spaces tab and members screen, driven by keys, checked through the API."""

from __future__ import annotations

from amphub.tui.forms import ConfirmScreen, FormScreen
from amphub.tui.members import MembersScreen
from amphub.tui.messages import MembersChanged, SpaceChanged, SpaceUnsubscribed
from amphub.tui.spaces import COLUMNS, SpacesPane
from tests.conftest import GIB, Hub, console, posted, until

UNIT = 10 * GIB


async def _open_spaces(app, pilot, selected: str | None = None):
    await pilot.press("2")
    table = app.query_one(SpacesPane).table
    await until(pilot, lambda: table.loaded, "the spaces")
    if selected:
        await until(pilot, lambda: selected in table.items, f"{selected} listed")
        table.move_cursor(row=table.get_row_index(selected))
        await pilot.pause()
    return table


async def _form(app, pilot) -> FormScreen:
    await until(pilot, lambda: isinstance(app.screen, FormScreen), "the form")
    return app.screen


async def _space(hub: Hub, space: str) -> dict:
    status, body = await hub.call("GET", f"/api/v1/spaces/{space}")
    assert status == 200, body
    return body


async def test_create_space_with_quota_units_and_billing_mode(hub: Hub):
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        table = await _open_spaces(app, pilot)
        await pilot.press("n")
        await _form(app, pilot)
        await pilot.press(*"Vision lab", "tab", *"vision", "tab", "home", "ctrl+k", "3", "tab")
        await pilot.press("enter", "down", "enter")  # the billing drop-down: yearly
        await pilot.press("tab", "home", "ctrl+k", "2", "enter")
        await until(pilot, lambda: "vision" in table.items, "the new space listed")
    space = await _space(hub, "vision")
    assert (space["name"], space["quota"], space["billing_mode"]) == (
        "Vision lab",
        3 * UNIT,
        "yearly",
    )
    assert int(space["expires_at"][:4]) - int(space["created_at"][:4]) == 2
    assert [m.space["id"] for m in posted(messages, SpaceChanged)] == ["vision"]


async def test_adjust_quota_and_renew(hub: Hub):
    before = await hub.space("team")
    async with console(hub) as (app, pilot):
        table = await _open_spaces(app, pilot, "team")
        await pilot.press("e")
        form = await _form(app, pilot)
        assert form.query_one("#units").value == "1"
        await pilot.press("home", "ctrl+k", "4", "enter")
        await until(pilot, lambda: table.items["team"]["quota"] == 4 * UNIT, "the new quota")
        assert "40 GiB" in str(table.get_row("team")[2])
        await pilot.press("w")
        await _form(app, pilot)
        await pilot.press("home", "ctrl+k", "2", "enter")
        expires = before["expires_at"]
        await until(pilot, lambda: table.items["team"]["expires_at"] != expires, "renewal")
    space = await _space(hub, "team")
    assert space["quota"] == 4 * UNIT
    months = lambda stamp: int(stamp[:4]) * 12 + int(stamp[5:7])  # noqa: E731
    assert months(space["expires_at"]) - months(before["expires_at"]) == 2


async def test_unsubscribe_asks_for_the_space_id(hub: Hub):
    await hub.space("team")
    await hub.space("keep")
    messages: list = []
    async with console(hub, messages=messages) as (app, pilot):
        table = await _open_spaces(app, pilot, "team")
        await pilot.press("u")
        form = await _form(app, pilot)
        assert "Type the space id to confirm" in str(form.query_one(".dialog-note").render())
        await pilot.press(*"keep", "enter")
        await until(pilot, lambda: form.error, "the refusal")
        assert form.error == "'keep' is not 'team'"
        assert (await hub.call("GET", "/api/v1/spaces/team"))[0] == 200
        await pilot.press(*["backspace"] * 4, *"team", "enter")
        await until(pilot, lambda: "team" not in table.items, "the space gone from the list")
    assert (await hub.call("GET", "/api/v1/spaces/team"))[0] == 404
    assert (await hub.call("GET", "/api/v1/spaces/keep"))[0] == 200
    assert [m.space_id for m in posted(messages, SpaceUnsubscribed)] == ["team"]


async def test_members_added_changed_and_removed(hub: Hub):
    await hub.space("team")
    await hub.user("bob")
    messages: list = []

    async def role() -> str | None:
        _, body = await hub.call("GET", "/api/v1/spaces/team/members")
        return {m["user"]: m["role"] for m in body["members"]}.get("bob")

    async with console(hub, messages=messages) as (app, pilot):
        await _open_spaces(app, pilot, "team")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MembersScreen), "the members")
        members = app.screen
        await pilot.press("a")
        await _form(app, pilot)
        await pilot.press(*"bob", "enter")
        await until(pilot, _is(role, "user"), "bob added with the least role")
        await until(pilot, lambda: members.selected is not None, "the members listed")
        table = members.query_one("#members-table")
        await until(pilot, lambda: table.row_count == 2, "bob listed")
        table.move_cursor(row=table.get_row_index("bob"))
        await pilot.press("e")
        await _form(app, pilot)
        await pilot.press("enter", "up", "enter", "ctrl+s")  # the drop-down: maintainer
        await until(pilot, lambda: isinstance(app.screen, MembersScreen), "back to the members")
        await until(pilot, _is(role, "maintainer"), "bob's role changed")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, _is(role, None), "bob removed")
    roles = [m.role for m in posted(messages, MembersChanged)]
    assert roles == ["user", "maintainer", None]


def _is(read, expected):
    async def check() -> bool:
        return await read() == expected

    return check


async def test_columns_fit_the_width_the_least_important_left_out_first(hub: Hub):
    await hub.space("a-team-with-a-long-id", name="A name long enough to be clipped by the tab")
    widths = {}
    for size in ((160, 30), (120, 30), (80, 24), (60, 24)):
        async with console(hub, size=size) as (app, pilot):
            table = await _open_spaces(app, pilot, "a-team-with-a-long-id")
            await until(pilot, lambda t=table: t.shown and t.row_count, "the columns")
            # Nothing is cut off at the right edge: what does not fit is left out whole.
            assert table.virtual_size.width <= table.size.width
            widths[size[0]] = table.shown_keys
            detail = app.query_one("#spaces-detail")
            assert "a-team-with-a-long-id" in str(detail.render())
    everything = [c.key for c in COLUMNS]
    assert widths[160] == widths[120] == everything
    assert widths[80] == ["id", "usage", "status", "expires"]
    assert widths[60] == ["id", "usage", "status"]
    # What is left out is always less important than anything shown.
    drop = {c.key: c.drop for c in COLUMNS}
    for shown in widths.values():
        left_out = [drop[key] for key in everything if key not in shown]
        assert all(drop[key] < min(left_out, default=99) for key in shown)

"""The users tab: list, create (key shown once), disable, roles, new keys."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static

from amphub.tui import formatting as fmt
from amphub.tui.client import Page
from amphub.tui.fitted_table import Column
from amphub.tui.forms import ConfirmScreen, FlagField, FormScreen, KeyScreen, TextField
from amphub.tui.messages import KeyRegenerated, UserChanged, UserCreated
from amphub.tui.paged_table import PagedTable
from amphub.tui.pane import PagedPane

PER_PAGE = 100
COLUMNS = [
    Column("name", "Name"),
    Column("admin", "Admin"),
    Column("creator", "Creator", drop=1),
    Column("disabled", "Disabled"),
    Column("created", "Created", drop=2),
]
# The changes asked before they are made, by flag and new value.
ASKED_FIRST = {
    ("admin", True): "Make {name} an administrator? They may then do everything here.",
    ("admin", False): "Take the administrator role from {name}?",
    ("disabled", True): "Disable {name}? Their key and tokens stop working at once.",
    ("disabled", False): "Enable {name} again? Their key works again at once.",
}


def user_row(user: dict) -> tuple[str, list]:
    """A user's row: name, the three flags and when it was created."""
    return user["name"], [
        user["name"],
        fmt.flag(user["admin"]),
        fmt.flag(user["creator"]),
        fmt.flag(user["disabled"]),
        fmt.when(user["created_at"]),
    ]


class UsersPane(PagedPane):
    """Every user, a page at a time, with the administrator's actions on the selected one."""

    TITLE = "Users"
    BINDINGS = [
        Binding("n", "create", "New"),
        Binding("d", "flip('disabled')", "Disable/enable"),
        Binding("a", "flip('admin')", "Admin"),
        Binding("c", "flip('creator')", "Creator"),
        Binding("k", "regenerate_key", "New key"),
        Binding("slash", "filter", "Filter", show=False),
    ]

    def compose(self) -> ComposeResult:
        """A filter line over the table."""
        with Horizontal(classes="bar"):
            yield Input(placeholder="/ filter by name", compact=True, id="users-filter")
            yield Static("", classes="count", id="users-count", markup=False)
        yield PagedTable(COLUMNS, self._fetch, user_row, per_page=PER_PAGE, id="users-table")

    async def _fetch(self, page: int, per_page: int) -> Page | None:
        text = self.query_one("#users-filter", Input).value.strip()
        return await self.ask(self.client.users(page, per_page, text))

    @on(PagedTable.PageLoaded)
    def _count(self) -> None:
        self.query_one("#users-count", Static).update(fmt.count(self.table.total or 0, "user"))

    @on(Input.Submitted, "#users-filter")
    def _filtered(self) -> None:
        self.reload()
        self.focus_list()

    def action_filter(self) -> None:
        """Type a part of a name to list only the users that have it."""
        self.query_one("#users-filter", Input).focus()

    @work(group="users-create")
    async def action_create(self) -> None:
        """Create a user and show its key once."""
        created = await self.app.push_screen_wait(
            FormScreen(
                "New user",
                [
                    TextField("name", "Name", placeholder="a-z 0-9 . _ -"),
                    FlagField("admin", "Administrator"),
                    FlagField("creator", "May create spaces"),
                ],
                lambda values: self.client.create_user(**values),
                action="Create user",
            )
        )
        if created is None:
            return
        key = created.pop("key")
        self.table.put(created)
        self._count()
        self.post_message(UserCreated(created))
        await self.app.push_screen_wait(KeyScreen(created["name"], key))

    @work(group="users-flip")
    async def action_flip(self, flag: str) -> None:
        """Flip one flag of the selected user: admin, creator or disabled.

        Making or unmaking an administrator and disabling or enabling a user are asked
        first: a stray key must not change who may do everything.
        """
        user = self.table.selected
        if user is None:
            return
        value = not user[flag]
        question = ASKED_FIRST.get((flag, value))
        if question and not await self.app.push_screen_wait(
            ConfirmScreen(question.format(name=user["name"]))
        ):
            return
        changed = await self.ask(self.client.change_user(user["name"], **{flag: value}))
        if changed is not None:
            self.table.put(changed)
            self.post_message(UserChanged(changed))
            word = {"admin": "administrator", "creator": "space creator"}.get(flag, flag)
            state = "now" if changed[flag] else "no longer"
            self.notify(f"{changed['name']} is {state} {word}")

    @work(group="users-key")
    async def action_regenerate_key(self) -> None:
        """Give the selected user a new key; the old one stops working at once."""
        user = self.table.selected
        if user is None:
            return
        question = f"Give {user['name']} a new key? The old key stops working at once."
        if user["name"] == self.console.user_name:
            question += " It is the key this console uses: start it again with the new one."
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        key = await self.ask(self.client.regenerate_key(user["name"]))
        if key is None:
            return
        self.post_message(KeyRegenerated(user["name"]))
        await self.app.push_screen_wait(KeyScreen(user["name"], key))

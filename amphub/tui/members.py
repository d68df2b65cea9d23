"""The members of a space or a model and their roles: add, change, remove."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import DataTable, Footer, Static

from amphub.tui.client import ApiClient, RequestRefused, ServerUnreachable
from amphub.tui.fitted_table import cursor_key
from amphub.tui.forms import ChoiceField, ConfirmScreen, Field, FormScreen, TextField
from amphub.tui.header import ConsoleHeader
from amphub.tui.messages import MembersChanged
from amphub.tui.pane import ServerAccess

SUGGESTED = 20  # names asked for at once; the list is filtered on the server


class UserNames(Suggester):
    """Completes a user name from the names the server knows that start with what is typed.

    Asked of the client directly, not through the console: a suggestion is a help, and
    one that cannot be had (the caller may not list users) is simply not offered.
    """

    def __init__(self, client: ApiClient) -> None:
        super().__init__(case_sensitive=False)
        self.client = client

    async def get_suggestion(self, value: str) -> str | None:
        """The first user name that starts with `value`."""
        if not value:
            return None
        try:
            page = await self.client.users(1, SUGGESTED, value)
        except (RequestRefused, ServerUnreachable):
            return None
        return next((u["name"] for u in page.items if u["name"].startswith(value)), None)


# Reads and downloads, in a space and on a model: the role the add forms start from.
DEFAULT_ROLE = "user"


class MembersScreen(ServerAccess, Screen):
    """Who holds which role in `scope` (`spaces/ID` or `models/SPACE/ID`), roles most first."""

    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "change", "Change role"),
        Binding("x", "remove", "Remove"),
        Binding("r", "reload", "Refresh"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, scope: str, title: str, roles: tuple[str, ...]) -> None:
        super().__init__()
        self.scope = scope
        self.heading = title
        self.roles = roles

    def compose(self) -> ComposeResult:
        """Header, title, the table of members, footer."""
        yield ConsoleHeader()
        yield Static(self.heading, classes="screen-title", markup=False)
        yield DataTable(cursor_type="row", id="members-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Set up the columns and load the members."""
        table = self.query_one(DataTable)
        table.add_column("User", key="user")
        table.add_column("Role", key="role")
        self.action_reload()

    @property
    def selected(self) -> str | None:
        """The user name under the cursor."""
        return cursor_key(self.query_one(DataTable))

    @work(group="members-load", exclusive=True)
    async def action_reload(self) -> None:
        """Load the members again."""
        members = await self.ask(self.client.members(self.scope))
        if members is None:
            return
        table = self.query_one(DataTable)
        kept = self.selected
        table.clear()
        for member in members:
            table.add_row(Text(member["user"]), Text(member["role"]), key=member["user"])
        if kept is not None and kept in {m["user"] for m in members}:
            table.move_cursor(row=table.get_row_index(kept))

    @work(group="members-change")
    async def action_add(self) -> None:
        """Give a user a role: `user` (what the web form offers too) unless another is chosen."""
        user = TextField("user", "User", suggester=UserNames(self.client))
        await self._grant_form(
            "Add a member",
            [user, ChoiceField("role", "Role", self.roles, DEFAULT_ROLE)],
            "Add member",
        )

    @work(group="members-change")
    async def action_change(self) -> None:
        """Change the selected member's role."""
        user = self.selected
        if user is None:
            return
        current = str(self.query_one(DataTable).get_row(user)[1])
        default = current if current in self.roles else None
        await self._grant_form(
            f"Role of {user}",
            [ChoiceField("role", "Role", self.roles, default)],
            "Change role",
            user,
        )

    async def _grant_form(
        self, title: str, fields: list[Field], action: str, user: str | None = None
    ) -> None:
        async def grant(values: dict) -> dict:
            return await self.client.set_member(self.scope, user or values["user"], values["role"])

        granted = await self.app.push_screen_wait(FormScreen(title, fields, grant, action=action))
        if granted is None:
            return
        name = granted.get("user", user)
        self.post_message(MembersChanged(self.scope, name, granted["role"]))
        self.notify(f"{name} is now {granted['role']}")
        self.action_reload()

    @work(group="members-change")
    async def action_remove(self) -> None:
        """Take the selected member's role away."""
        user = self.selected
        if user is None:
            return
        if not await self.app.push_screen_wait(ConfirmScreen(f"Remove {user}'s role?")):
            return
        if await self.ask(self.client.remove_member(self.scope, user)) is None:
            return
        self.post_message(MembersChanged(self.scope, user, None))
        self.notify(f"{user} is no longer a member")
        self.action_reload()

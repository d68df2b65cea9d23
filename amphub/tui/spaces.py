"""The spaces tab: usage against quota, lifetime, and the owner's and maintainers' actions."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from amphub.tui import formatting as fmt
from amphub.tui.client import Page
from amphub.tui.fitted_table import Column
from amphub.tui.forms import ChoiceField, FormScreen, Invalid, NumberField, TextField
from amphub.tui.members import MembersScreen
from amphub.tui.messages import SpaceChanged, SpaceUnsubscribed
from amphub.tui.paged_table import PagedTable
from amphub.tui.pane import PagedPane

# Each space in a page has its usage summed on the server, so pages are smaller here.
PER_PAGE = 50
NAME_WIDTH = 20
BILLING_MODES = ("monthly", "yearly", "pay_as_you_go")
SPACE_ROLES = ("maintainer", "user")
COLUMNS = [
    Column("id", "Space"),
    Column("name", "Name", drop=3),
    Column("usage", "Used / quota"),
    Column("models", "Models", drop=5),
    Column("billing", "Billing", drop=6),
    Column("status", "Status", drop=1),
    Column("expires", "Expires", drop=2),
    Column("creator", "Creator", drop=4),
]


def space_row(space: dict) -> tuple[str, list]:
    """A space's row: the overview fields of the design."""
    return space["id"], [
        space["id"],
        fmt.clip(space["name"], NAME_WIDTH),
        fmt.usage(space["used"], space["quota"]),
        str(space["models"]),
        space["billing_mode"].replace("_", " "),
        fmt.status(space["status"]),
        fmt.day(space["expires_at"]),
        space["creator"],
    ]


def describe_space(space: dict) -> str:
    """All of a space's overview in one sentence, for the line under the table."""
    expires = f"expires {fmt.when(space['expires_at'])}" if space["expires_at"] else "no expiry"
    return (
        f"{space['id']} · {space['name']} · {fmt.size(space['used'])} of"
        f" {fmt.size(space['quota'])} · {fmt.count(space['models'], 'model')} ·"
        f" {space['billing_mode'].replace('_', ' ')} · {space['status'].replace('_', ' ')} ·"
        f" {expires} · created by {space['creator']} on {fmt.day(space['created_at'])}"
    )


class SpacesPane(PagedPane):
    """Every live space, a page at a time."""

    TITLE = "Spaces"
    BINDINGS = [
        Binding("n", "create", "New"),
        Binding("e", "quota", "Quota"),
        Binding("w", "renew", "Renew"),
        Binding("u", "unsubscribe", "Unsubscribe"),
        Binding("m", "members", "Members"),
        Binding("slash", "filter", "Filter", show=False),
    ]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.quota_unit: int | None = None

    def compose(self) -> ComposeResult:
        """A filter line over the table."""
        with Horizontal(classes="bar"):
            yield Input(placeholder="/ filter by id or name", compact=True, id="spaces-filter")
            yield Static("", classes="count", id="spaces-count", markup=False)
        yield PagedTable(COLUMNS, self._fetch, space_row, per_page=PER_PAGE, id="spaces-table")
        yield Static("", classes="detail", id="spaces-detail", markup=False)

    async def _fetch(self, page: int, per_page: int) -> Page | None:
        text = self.query_one("#spaces-filter", Input).value.strip()
        found = await self.ask(self.client.spaces(page, per_page, text))
        if found is None:
            return None
        found_page, self.quota_unit = found
        return found_page

    @on(PagedTable.PageLoaded)
    def _count(self) -> None:
        self.query_one("#spaces-count", Static).update(fmt.count(self.table.total or 0, "space"))

    @on(Input.Submitted, "#spaces-filter")
    def _filtered(self) -> None:
        self.reload()
        self.focus_list()

    @on(DataTable.RowSelected)
    def _open(self) -> None:
        self.action_members()

    @on(DataTable.RowHighlighted)
    def _describe(self) -> None:
        space = self.table.selected
        self.query_one("#spaces-detail", Static).update(describe_space(space) if space else "")

    def action_filter(self) -> None:
        """Type a part of an id or name to list only the spaces that have it."""
        self.query_one("#spaces-filter", Input).focus()

    async def _quota_unit(self) -> int | None:
        """The size quotas are sold in, asked for with the smallest page if not known yet."""
        if self.quota_unit is None:
            await self._fetch(1, 1)
        return self.quota_unit

    def _unit_words(self) -> str:
        return f"units of {fmt.size(self.quota_unit)}"

    @work(group="spaces-create")
    async def action_create(self) -> None:
        """Create a space: name, id, quota in units, billing mode and periods paid."""
        unit = await self._quota_unit()
        if unit is None:
            return

        async def create(values: dict) -> dict:
            values["quota"] *= unit
            if not values["id"]:
                del values["id"]
            return await self.client.create_space(values)

        space = await self.app.push_screen_wait(
            FormScreen(
                "New space",
                [
                    TextField("name", "Name"),
                    TextField("id", "Id", placeholder="made from the name", required=False),
                    NumberField("quota", f"Quota ({self._unit_words()})"),
                    ChoiceField("billing_mode", "Billing", BILLING_MODES),
                    NumberField("period", "Months or years"),
                ],
                create,
                action="Create space",
            )
        )
        if space is not None:
            self.table.put(space)
            self._count()
            self.post_message(SpaceChanged(space))
            self.notify(f"space {space['id']} created")

    @work(group="spaces-quota")
    async def action_quota(self) -> None:
        """Set the selected space's quota, in units."""
        space = self.table.selected
        unit = await self._quota_unit()
        if space is None or unit is None:
            return
        field = NumberField("units", f"Quota ({self._unit_words()})", space["quota"] // unit)
        changed = await self.app.push_screen_wait(
            FormScreen(
                f"Quota of {space['id']}",
                [field],
                lambda values: self.client.set_quota(space["id"], values["units"] * unit),
                action="Set quota",
            )
        )
        if changed is not None:
            self.table.put(changed)
            self.post_message(SpaceChanged(changed))
            self.notify(f"quota of {changed['id']} is now {fmt.size(changed['quota'])}")

    @work(group="spaces-renew")
    async def action_renew(self) -> None:
        """Extend the selected space by months or years, by its billing mode."""
        space = self.table.selected
        if space is None:
            return
        unit = "years" if space["billing_mode"] == "yearly" else "months"
        changed = await self.app.push_screen_wait(
            FormScreen(
                f"Renew {space['id']}",
                [NumberField("period", f"How many {unit}")],
                lambda values: self.client.renew(space["id"], values["period"]),
                action="Renew",
            )
        )
        if changed is not None:
            self.table.put(changed)
            self.post_message(SpaceChanged(changed))
            self.notify(f"{changed['id']} now expires {fmt.when(changed['expires_at'])}")

    @work(group="spaces-unsubscribe")
    async def action_unsubscribe(self) -> None:
        """Release the selected space, once its id is typed to confirm."""
        space = self.table.selected
        if space is None:
            return
        note = (
            f"This releases {space['id']} ({space['name']}) at once: its models and their"
            " data are deleted. Type the space id to confirm."
        )

        async def unsubscribe(values: dict) -> dict:
            if values["confirm"] != space["id"]:
                raise Invalid(f"{values['confirm']!r} is not {space['id']!r}")
            return await self.client.unsubscribe(space["id"], values["confirm"])

        released = await self.app.push_screen_wait(
            FormScreen(
                "Unsubscribe",
                [TextField("confirm", "Space id")],
                unsubscribe,
                action="Unsubscribe and delete",
                note=note,
            )
        )
        if released is not None:
            self.table.drop(space["id"])
            self._count()
            self.post_message(SpaceUnsubscribed(space["id"]))
            self.notify(f"{space['id']} was released; its data is being deleted")

    def action_members(self) -> None:
        """The selected space's members and their roles."""
        space = self.table.selected
        if space is not None:
            title = f"Members of space {space['id']} ({space['name']})"
            self.app.push_screen(MembersScreen(f"spaces/{space['id']}", title, SPACE_ROLES))

"""The models tab: the search, filtered by space and card fields, and a model's actions."""

from __future__ import annotations

import shlex

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from amphub.tui import formatting as fmt
from amphub.tui.client import Page
from amphub.tui.fitted_table import Column
from amphub.tui.model_screen import ModelScreen
from amphub.tui.model_tasks import start_deploy, start_scan, start_sync
from amphub.tui.paged_table import OpenablePagedTable, PagedTable
from amphub.tui.pane import PagedPane

PER_PAGE = 100  # the most the search answers at once
NAME_WIDTH = 24
FILTERS = ("space", "framework", "task_type", "algorithm", "tag", "license", "dataset")
COLUMNS = [
    Column("model", "Model"),
    Column("name", "Name", drop=3),
    Column("visibility", "Visibility", drop=5),
    Column("owner", "Owner", drop=6),
    Column("framework", "Framework", drop=2),
    Column("task", "Task", drop=1),
    Column("updated", "Updated", drop=4),
]


class BadFilter(Exception):
    """The filter line cannot be read; the message says why."""


def parse_filter(line: str) -> dict[str, str]:
    """`space:team framework:PyTorch "task_type:Text generation" gpt` as search parameters.

    Words that name no filter are searched for as text (`q`).
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise BadFilter(f"the filter cannot be read: {exc}") from None
    filters: dict[str, str] = {}
    text = []
    for word in words:
        name, colon, value = word.partition(":")
        if colon and name in FILTERS:
            filters[name] = value
        else:
            text.append(word)
    if text:
        filters["q"] = " ".join(text)
    return filters


def _task(card: dict) -> str:
    return " / ".join(part for part in (card.get("task_type"), card.get("algorithm")) if part)


def model_row(model: dict) -> tuple[str, list]:
    """A model's row: where it is, who owns it and what its card says."""
    card = model.get("card") or {}
    return f"{model['space']}/{model['id']}", [
        f"{model['space']}/{model['id']}",
        fmt.clip(model["name"], NAME_WIDTH),
        model["visibility"],
        model["owner"],
        fmt.clip(", ".join(card.get("frameworks") or []), NAME_WIDTH),
        fmt.clip(_task(card), NAME_WIDTH),
        fmt.day(model["updated_at"]),
    ]


def describe_model(model: dict) -> str:
    """A model's row in one sentence, unclipped, for the line under the table."""
    card = model.get("card") or {}
    parts = [
        f"{model['space']}/{model['id']}",
        model["name"],
        model["visibility"],
        f"owner {model['owner']}",
        ", ".join(card.get("frameworks") or []),
        _task(card),
        f"license {card['license']}" if card.get("license") else "",
        f"updated {fmt.when(model['updated_at'])}",
    ]
    return " · ".join(part for part in parts if part)


class ModelsPane(PagedPane):
    """Every model the administrator may retrieve, a page at a time, newest first."""

    TITLE = "Models"
    BINDINGS = [
        Binding("o", "open", "Details", show=False),
        Binding("s", "scan", "Scan"),
        Binding("y", "sync", "Sync"),
        Binding("p", "deploy", "Deploy"),
        Binding("slash", "filter", "Filter"),
    ]

    def compose(self) -> ComposeResult:
        """A filter line over the table."""
        with Horizontal(classes="bar"):
            yield Input(
                placeholder="/ text space:ID framework:… task_type:… algorithm:… tag:… license:…",
                compact=True,
                id="models-filter",
            )
            yield Static("", classes="count", id="models-count", markup=False)
        yield OpenablePagedTable(
            COLUMNS, self._fetch, model_row, per_page=PER_PAGE, id="models-table"
        )
        yield Static("", classes="detail", id="models-detail", markup=False)

    async def _fetch(self, page: int, per_page: int) -> Page | None:
        try:
            filters = parse_filter(self.query_one("#models-filter", Input).value)
        except BadFilter as exc:
            self.notify(str(exc), severity="warning")
            return None
        return await self.ask(self.client.models(page, per_page, filters))

    @on(PagedTable.PageLoaded)
    def _count(self) -> None:
        self.query_one("#models-count", Static).update(fmt.count(self.table.total or 0, "model"))

    @on(Input.Submitted, "#models-filter")
    def _filtered(self) -> None:
        self.reload()
        self.focus_list()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    @on(DataTable.RowHighlighted)
    def _describe(self) -> None:
        model = self.table.selected
        self.query_one("#models-detail", Static).update(describe_model(model) if model else "")

    def action_filter(self) -> None:
        """Filter by text, space and card fields."""
        self.query_one("#models-filter", Input).focus()

    def _selected_ids(self) -> tuple[str, str] | None:
        model = self.table.selected
        return (model["space"], model["id"]) if model else None

    def action_open(self) -> None:
        """The selected model's card, refs, size, replicas, deployments and last scan."""
        ids = self._selected_ids()
        if ids:
            self.app.push_screen(ModelScreen(*ids))

    @work(group="models-task")
    async def action_scan(self) -> None:
        """Queue a security scan of the selected model."""
        if ids := self._selected_ids():
            await start_scan(self, *ids)

    @work(group="models-task")
    async def action_sync(self) -> None:
        """Queue a sync of the selected model to a zone."""
        if ids := self._selected_ids():
            await start_sync(self, *ids)

    @work(group="models-task")
    async def action_deploy(self) -> None:
        """Queue a deploy of the selected model to a target."""
        if ids := self._selected_ids():
            await start_deploy(self, *ids)

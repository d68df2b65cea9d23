"""The tasks tab: a live list with progress bars, filtered by kind and status."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Select, Static

from amphub.tui import formatting as fmt
from amphub.tui.fitted_table import Column, cursor_key
from amphub.tui.forms import ConfirmScreen
from amphub.tui.messages import TaskCanceled
from amphub.tui.paged_table import OpenableTable
from amphub.tui.pane import Pane
from amphub.tui.task_screen import FINISHED, TaskScreen

KINDS = ("scan", "sync", "deploy", "mirror")
STATES = ("queued", "running", "succeeded", "failed", "canceled")
POLL_SECONDS = 1.0
COLUMNS = [
    Column("id", "Task"),
    Column("kind", "Kind", drop=4),
    Column("model", "Model"),
    Column("ref", "Ref", drop=3),
    Column("status", "Status"),
    Column("verdict", "Verdict"),
    Column("progress", "Progress", drop=2),
    Column("created", "Created", drop=5),
    Column("message", "Message", drop=1),
]
MESSAGE_WIDTH = 40


def task_row(task: dict) -> list:
    """A task's row, its progress as a bar."""
    return [
        str(task["id"]),
        task["kind"],
        task["model"],
        task["ref"] or "–",
        fmt.status(task["status"]),
        fmt.status(fmt.verdict(task)) if fmt.verdict(task) else "",
        fmt.progress(task["progress"], task["status"]),
        fmt.when(task["created_at"]),
        fmt.clip(task["message"], MESSAGE_WIDTH),
    ]


def describe_task(task: dict) -> str:
    """A task in one sentence, its whole message included, for the line under the table."""
    ref = f" at {task['ref']}" if task["ref"] else ""
    message = f" · {task['message']}" if task["message"] else ""
    found = fmt.verdict(task)
    message = f" · verdict {found}{message}" if found else message
    return (
        f"task {task['id']} · {task['kind']} of {task['model']}{ref} ·"
        f" {task['status']} {task['progress']}% · by {task['created_by']}{message}"
    )


class TasksPane(Pane):
    """The newest tasks, asked for again every second while the tab is shown."""

    TITLE = "Tasks"
    BINDINGS = [
        Binding("o", "open", "Details", show=False),
        Binding("x", "cancel", "Cancel task"),
        Binding("f", "filter", "Filter"),
    ]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.tasks: dict[str, dict] = {}
        self._loading = False
        self._loaded = False

    def compose(self) -> ComposeResult:
        """Filters by kind and status over the table."""
        with Horizontal(classes="bar"):
            kinds = [("any kind", ""), *((kind, kind) for kind in KINDS)]
            states = [("any status", ""), *((state, state) for state in STATES)]
            yield Select(kinds, value="", allow_blank=False, compact=True, id="tasks-kind")
            yield Select(states, value="", allow_blank=False, compact=True, id="tasks-status")
            yield Static("", classes="count", id="tasks-count", markup=False)
        yield OpenableTable(COLUMNS, id="tasks-table")
        yield Static("", classes="detail", id="tasks-detail", markup=False)

    def on_mount(self) -> None:
        """Set up the columns and the polling."""
        self.set_interval(POLL_SECONDS, self._poll)

    @property
    def table(self) -> OpenableTable:
        """The list of tasks."""
        return self.query_one("#tasks-table", OpenableTable)

    @property
    def loaded(self) -> bool:
        """Whether the list was loaded once."""
        return self._loaded

    def focus_list(self) -> None:
        """Focus the table."""
        self.table.focus()

    def _poll(self) -> None:
        # Only while someone looks, and never two requests at once on a slow server.
        if self.is_on_screen and self.screen.is_current and self._loaded and not self._loading:
            self.reload()

    def reload(self) -> None:
        """Ask for the tasks again and show what changed."""
        self._load()

    @work(group="tasks-load")
    async def _load(self) -> None:
        self._loading = True
        try:
            kind = self.query_one("#tasks-kind", Select).value
            status = self.query_one("#tasks-status", Select).value
            tasks = await self.ask(self.client.tasks(str(kind), str(status)))
        finally:
            self._loading = False
        if tasks is not None:
            self._show(tasks)
            self._loaded = True

    def _show(self, tasks: list[dict]) -> None:
        table = self.table
        keys = [str(task["id"]) for task in tasks]
        kept, reordered = self.selected, keys != list(self.tasks)
        if reordered:
            table.clear_rows()
        for key, task in zip(keys, tasks, strict=True):
            if reordered or task != self.tasks[key]:
                table.set_row(key, task_row(task))
        table.fit()
        if reordered and kept is not None and str(kept["id"]) in keys:
            table.move_cursor(row=keys.index(str(kept["id"])), scroll=False)
        self.tasks = dict(zip(keys, tasks, strict=True))
        running = sum(task["status"] not in FINISHED for task in tasks)
        self.query_one("#tasks-count", Static).update(
            f"{fmt.count(len(tasks), 'task')}, {running} unfinished"
        )
        self._describe()

    @property
    def selected(self) -> dict | None:
        """The task under the cursor."""
        key = cursor_key(self.table)
        return None if key is None else self.tasks.get(key)

    @on(Select.Changed)
    def _filtered(self) -> None:
        if self._loaded:
            self.reload()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    @on(DataTable.RowHighlighted)
    def _describe(self) -> None:
        task = self.selected
        self.query_one("#tasks-detail", Static).update(describe_task(task) if task else "")

    def action_filter(self) -> None:
        """Choose the kind and status of the tasks listed."""
        self.query_one("#tasks-kind", Select).focus()

    def action_open(self) -> None:
        """The selected task's details and result."""
        if task := self.selected:
            self.app.push_screen(TaskScreen(task["id"]))

    @work(group="tasks-cancel")
    async def action_cancel(self) -> None:
        """Cancel the selected task, or ask it to stop if it runs."""
        task = self.selected
        if task is None:
            return
        question = f"Cancel task {task['id']} ({task['kind']} of {task['model']})?"
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        canceled = await self.ask(self.client.cancel_task(task["id"]))
        if canceled is not None:
            self.post_message(TaskCanceled(canceled))
            self.notify(f"task {task['id']} canceled")
            self.reload()

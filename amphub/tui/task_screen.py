"""One task as it runs: its progress, and its result (a scan's findings, file by file)."""

from __future__ import annotations

import json

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from amphub.tui import formatting as fmt
from amphub.tui.forms import ConfirmScreen
from amphub.tui.header import ConsoleHeader
from amphub.tui.messages import TaskCanceled
from amphub.tui.pane import ServerAccess

FINISHED = ("succeeded", "failed", "canceled")
FOLLOW_SECONDS = 1.0


def task_facts(task: dict) -> Table:
    """What the task works on, who asked, its state and times."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("Model", task["model"]),
        ("Ref", f"{task['ref'] or '–'} at {fmt.short_commit(task['commit'])}"),
        ("Status", fmt.status(task["status"])),
        ("Verdict", fmt.status(fmt.verdict(task)) if fmt.verdict(task) else "–"),
        ("Progress", fmt.progress(task["progress"], task["status"])),
        ("Message", task["message"] or "–"),
        ("Asked by", task["created_by"]),
        ("Created", fmt.when(task["created_at"])),
        ("Started", fmt.when(task["started_at"])),
        ("Finished", fmt.when(task["finished_at"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _finding(finding: dict) -> Text:
    line = f" (line {finding['line']})" if finding.get("line") else ""
    masked = f" {finding['masked']}" if finding.get("masked") else ""
    style = fmt.STATUS_STYLES.get(finding.get("severity", ""), "")
    return Text(f"{finding['kind']}: {finding['message']}{line}{masked}", style=style)


def scan_files(result: dict) -> RenderableType:
    """Each scanned file: its status and findings, earlier versions' secrets included."""
    table = Table("File", "Status", "Findings", box=box.SIMPLE_HEAD, pad_edge=False)
    for path, verdict in sorted(result.get("files", {}).items()):
        findings = [_finding(f) for f in verdict.get("findings") or []]
        for earlier in verdict.get("history") or []:
            where = fmt.short_commit(earlier["commit"])
            if earlier.get("path", path) != path:  # before a rename
                where += f" as {earlier['path']}"
            findings += [_finding(f) + f" in {where}" for f in earlier["findings"]]
        notes = Text("\n").join(findings) if findings else Text("–", style="dim")
        table.add_row(path, fmt.status(verdict["status"]), notes)
    summary = result.get("summary", {})
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary.get("counts", {}).items()))
    heading = Text.assemble(
        "Overall ", fmt.status(summary.get("status")), f" · {summary.get('files', 0)} files"
    )
    if counts:
        heading.append(f" ({counts})")
    return Group(heading, table)


def task_result(task: dict) -> RenderableType:
    """The result: a scan's files, or any other task's result as it came."""
    result = task.get("result")
    if result is None:
        return Text("no result yet" if task["status"] not in FINISHED else "no result", style="dim")
    if task["kind"] == "scan" and isinstance(result, dict) and "files" in result:
        return scan_files(result)
    return Text(json.dumps(result, indent=2, ensure_ascii=False))


class TaskScreen(ServerAccess, Screen):
    """A task, followed every second until it finishes."""

    BINDINGS = [
        Binding("x", "cancel", "Cancel task"),
        Binding("r", "reload", "Refresh"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id
        self.current: dict | None = None
        self._loading = False

    def compose(self) -> ComposeResult:
        """Header, title, facts and result in a scrolling column, footer."""
        yield ConsoleHeader()
        yield Static(f"Task {self.task_id}", classes="screen-title", id="task-title", markup=False)
        with VerticalScroll(id="task-sections"):
            yield Static(id="task-facts", markup=False)
            yield Static(Text("Result", style="bold underline"), markup=False)
            yield Static(id="task-result", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Load the task and follow it."""
        self.query_one("#task-sections").focus()
        self.action_reload()
        self.set_interval(FOLLOW_SECONDS, self._follow)

    def _follow(self) -> None:
        # A slow answer is waited for rather than replaced by the next poll.
        running = self.current is None or self.current["status"] not in FINISHED
        if self.is_current and running and not self._loading:
            self.action_reload()

    @work(group="task-load")
    async def action_reload(self) -> None:
        """Load the task again."""
        self._loading = True
        try:
            task = await self.ask(self.client.task(self.task_id))
        finally:
            self._loading = False
        if task is None:
            return
        self.current = task
        title = f"Task {task['id']} · {task['kind']} of {task['model']}"
        self.query_one("#task-title", Static).update(title)
        self.query_one("#task-facts", Static).update(task_facts(task))
        self.query_one("#task-result", Static).update(task_result(task))

    @work(group="task-cancel")
    async def action_cancel(self) -> None:
        """Cancel the task, or ask it to stop if it runs."""
        if not await self.app.push_screen_wait(ConfirmScreen(f"Cancel task {self.task_id}?")):
            return
        task = await self.ask(self.client.cancel_task(self.task_id))
        if task is not None:
            self.post_message(TaskCanceled(task))
            self.notify(f"task {self.task_id} canceled")
            self.action_reload()

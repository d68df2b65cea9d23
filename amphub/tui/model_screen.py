"""One model: card, refs, size, replicas, deployments and last scan, with its actions."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static, TabbedContent, TabPane

from amphub.tui import formatting as fmt
from amphub.tui.forms import ChoiceField, FormScreen
from amphub.tui.header import ConsoleHeader
from amphub.tui.members import MembersScreen
from amphub.tui.messages import ModelChanged
from amphub.tui.model_tasks import DEFAULT_REF, start_deploy, start_scan, start_sync
from amphub.tui.pane import ServerAccess
from amphub.tui.task_screen import TaskScreen

VISIBILITIES = ("private", "internal", "public")
MODEL_ROLES = ("maintainer", "developer", "user", "visitor")
DESCRIPTION_LINES = 6
# Markdown is laid out in full, so a huge README would hold the screen up.
README_SHOWN = 100_000
NO_README = "*This model has no README.md.*"
SECTIONS = ("facts", "card", "scan", "refs", "replicas", "deployments")


def without_front_matter(readme: str) -> str:
    """The README below its front matter, which the card section shows already."""
    lines = readme.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return readme
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip("\r\n") == "---":
            return "".join(lines[number + 1 :])
    return readme


def _section(title: str, body: RenderableType) -> Group:
    return Group(Text(title, style="bold underline"), body, Text(""))


def _pairs(rows: list[tuple[str, str | Text]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    return table


def _rows(headings: tuple[str, ...], rows: list[list], empty: str) -> RenderableType:
    if not rows:
        return Text(empty, style="dim")
    table = Table(*headings, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for row in rows:
        table.add_row(*row)
    return table


def facts(model: dict) -> Group:
    """Where the model is, who owns it, its size and times."""
    return _section(
        "Model",
        _pairs(
            [
                ("Clone URL", model["url"]),
                ("Visibility", model["visibility"]),
                ("Owner", model["owner"]),
                ("Size", fmt.size(model.get("size"))),
                ("Created", fmt.when(model["created_at"])),
                ("Updated", fmt.when(model["updated_at"])),
            ]
        ),
    )


def card(model: dict) -> Group:
    """What the model card says, with the parser's warnings."""
    found = model.get("card") or {}
    if not found:
        return _section("Card", Text("no card yet", style="dim"))
    datasets = [d.get("name", "") for d in found.get("training_data") or [] if isinstance(d, dict)]
    parameters = found.get("parameters")
    rows = [
        ("Frameworks", ", ".join(found.get("frameworks") or []) or "–"),
        (
            "Task",
            " / ".join(p for p in (found.get("task_type"), found.get("algorithm")) if p) or "–",
        ),
        ("Industry", found.get("industry") or "–"),
        ("Tags", ", ".join(found.get("tags") or []) or "–"),
        ("Parameters", f"{parameters:,}" if isinstance(parameters, int) else "–"),
        ("License", found.get("license") or "–"),
        ("Datasets", ", ".join(name for name in datasets if name) or "–"),
    ]
    rows += [("Warning", Text(str(w), style="yellow")) for w in found.get("warnings") or []]
    description = "\n".join(
        (found.get("description") or "").strip().splitlines()[:DESCRIPTION_LINES]
    )
    parts: list[RenderableType] = [_pairs(rows)]
    if description:
        parts.append(Text(description, style="italic"))
    return _section("Card", Group(*parts))


def last_scan(model: dict) -> Group:
    """The summary of the last finished scan."""
    scan = model.get("scan")
    if not scan:
        return _section("Last scan", Text("never scanned", style="dim"))
    counts = ", ".join(f"{n} {state}" for state, n in sorted((scan.get("counts") or {}).items()))
    return _section(
        "Last scan",
        _pairs(
            [
                ("Result", fmt.status(scan.get("status"))),
                ("Files", f"{scan.get('files', 0)} ({counts or 'none'})"),
                ("Of", f"{scan['ref']} at {fmt.short_commit(scan['commit'])}"),
                ("Finished", f"{fmt.when(scan['finished_at'])} (task {scan['task']})"),
            ]
        ),
    )


def refs(found: dict | None) -> Group:
    """Branches and tags with their commits."""
    if found is None:
        return _section("Refs", Text("not readable", style="dim"))
    rows = [[b["name"], "branch", fmt.short_commit(b["commit"])] for b in found["branches"]]
    rows += [[t["name"], "tag", fmt.short_commit(t["commit"])] for t in found["tags"]]
    return _section("Refs", _rows(("Name", "Kind", "Commit"), rows, "none"))


def replicas(model: dict) -> Group:
    """Where the model is replicated, and how far behind each copy is."""
    rows = [
        [
            r["zone"],
            r["ref"],
            fmt.short_commit(r["commit"]),
            fmt.when(r["synced_at"]),
            Text("behind", style="yellow") if r["behind"] else Text("up to date", style="green"),
        ]
        for r in model.get("replicas") or []
    ]
    headings = ("Zone", "Ref", "Commit", "Synced", "State")
    return _section("Replicas", _rows(headings, rows, "not replicated"))


def deployments(model: dict) -> Group:
    """Where the model is deployed and how it is doing."""
    rows = [
        [
            d["target"],
            d["service"],
            fmt.status(d["status"]),
            f"{d.get('ready_replicas') or 0}/{d.get('replicas') or 0}",
            f"{d['ref']} {fmt.short_commit(d['commit'])}",
            fmt.when(d["updated_at"]),
        ]
        for d in model.get("deployments") or []
    ]
    headings = ("Target", "Service", "Status", "Ready", "Ref", "Updated")
    return _section("Deployments", _rows(headings, rows, "not deployed"))


class ModelScreen(ServerAccess, Screen):
    """Everything about one model, and what an administrator can do with it."""

    BINDINGS = [
        Binding("s", "scan", "Scan"),
        Binding("y", "sync", "Sync"),
        Binding("p", "deploy", "Deploy"),
        Binding("v", "visibility", "Visibility"),
        Binding("m", "members", "Members"),
        Binding("t", "last_scan", "Findings"),
        Binding("e", "switch('readme')", "README"),
        Binding("o", "switch('overview')", "Overview", show=False),
        Binding("r", "reload", "Refresh", show=False),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, space: str, model: str) -> None:
        super().__init__()
        self.space_id = space
        self.model_id = model
        self.model: dict | None = None

    def compose(self) -> ComposeResult:
        """Header, title, the sections in a scrolling column, footer."""
        yield ConsoleHeader()
        yield Static(
            f"{self.space_id}/{self.model_id}",
            classes="screen-title",
            id="model-title",
            markup=False,
        )
        with TabbedContent(id="model-tabs"):
            with TabPane("Overview", id="overview"), VerticalScroll(id="model-sections"):
                for name in SECTIONS:
                    yield Static(id=f"model-{name}", markup=False)
            with TabPane("README", id="readme"), VerticalScroll(id="model-readme-scroll"):
                yield Markdown("", id="model-readme", open_links=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Load the model; the overview takes the focus once the tabs are laid out."""
        self.call_after_refresh(self.action_switch, "overview")
        self.action_reload()

    def action_switch(self, tab: str) -> None:
        """Show the overview or the README."""
        self.query_one(TabbedContent).active = tab
        self.query_one("#model-sections" if tab == "overview" else "#model-readme-scroll").focus()

    @work(group="model-load", exclusive=True)
    async def action_reload(self) -> None:
        """Load the model and its refs again."""
        model = await self.ask(self.client.model(self.space_id, self.model_id))
        if model is None:
            return
        found_refs = await self.ask(self.client.refs(self.space_id, self.model_id))
        self.model = model
        title = f"{self.space_id}/{self.model_id} · {model['name']}"
        self.query_one("#model-title", Static).update(title)
        shown = {
            "facts": facts(model),
            "card": card(model),
            "scan": last_scan(model),
            "refs": refs(found_refs),
            "replicas": replicas(model),
            "deployments": deployments(model),
        }
        for name, renderable in shown.items():
            self.query_one(f"#model-{name}", Static).update(renderable)
        readme = await self.ask(self.client.readme(self.space_id, self.model_id, DEFAULT_REF))
        readme = without_front_matter(readme or "")
        if len(readme) > README_SHOWN:
            readme = readme[:README_SHOWN] + "\n\n*… cut here: the rest is in the file.*"
        await self.query_one("#model-readme", Markdown).update(readme or NO_README)

    @work(group="model-task")
    async def action_scan(self) -> None:
        """Queue a security scan."""
        await start_scan(self, self.space_id, self.model_id)

    @work(group="model-task")
    async def action_sync(self) -> None:
        """Queue a sync to a zone."""
        await start_sync(self, self.space_id, self.model_id)

    @work(group="model-task")
    async def action_deploy(self) -> None:
        """Queue a deploy to a target."""
        await start_deploy(self, self.space_id, self.model_id)

    @work(group="model-change")
    async def action_visibility(self) -> None:
        """Make the model private, internal or public."""
        current = self.model["visibility"] if self.model else None
        changed = await self.app.push_screen_wait(
            FormScreen(
                f"Visibility of {self.space_id}/{self.model_id}",
                [ChoiceField("visibility", "Visibility", VISIBILITIES, current)],
                lambda values: self.client.change_model(self.space_id, self.model_id, **values),
                action="Change visibility",
            )
        )
        if changed is not None:
            self.post_message(ModelChanged(changed))
            self.notify(f"{self.space_id}/{self.model_id} is now {changed['visibility']}")
            self.action_reload()

    def action_members(self) -> None:
        """The model's members and their roles."""
        scope = f"models/{self.space_id}/{self.model_id}"
        title = f"Members of model {self.space_id}/{self.model_id}"
        self.app.push_screen(MembersScreen(scope, title, MODEL_ROLES))

    def action_last_scan(self) -> None:
        """The last scan's findings, file by file."""
        scan = (self.model or {}).get("scan")
        if scan:
            self.app.push_screen(TaskScreen(scan["task"]))
        else:
            self.notify("this model was never scanned; press s to scan it")

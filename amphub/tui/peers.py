"""The zones, deploy targets and upstreams tabs: the peers models go to and come from."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from amphub.tui import formatting as fmt
from amphub.tui.fitted_table import cursor_key
from amphub.tui.forms import ChoiceField, ConfirmScreen, Field, FormScreen, NumberField, TextField
from amphub.tui.messages import PeersChanged, TaskStarted
from amphub.tui.pane import Pane


@dataclass(frozen=True)
class PeerKind:
    """What differs between zones and deploy targets."""

    path: str  # under /api/v1/
    noun: str
    columns: tuple[tuple[str, str], ...]  # (field, heading)
    fields: tuple[Field, ...]


ZONES = PeerKind(
    "zones",
    "zone",
    (
        ("name", "Zone"),
        ("url", "URL"),
        ("user", "User"),
        ("answers", "Reachable"),
        ("created_at", "Added"),
    ),
    (
        TextField("name", "Name"),
        TextField("url", "URL", placeholder="https://hub.example.com"),
        TextField("user", "User there"),
        TextField("key", "Key there", password=True),
    ),
)
TARGETS = PeerKind(
    "deploy-targets",
    "deploy target",
    (("name", "Target"), ("url", "URL"), ("created_at", "Added")),
    (
        TextField("name", "Name"),
        TextField("url", "URL", placeholder="https://inference.example.com/deploy"),
        TextField("secret", "Secret", password=True),
    ),
)
UPSTREAMS = PeerKind(
    "upstreams",
    "upstream",
    (
        ("name", "Upstream"),
        ("url", "URL"),
        ("space", "Mirror space"),
        ("visibility", "Visibility"),
        ("token", "Token"),
        ("created_at", "Added"),
    ),
    (
        TextField("name", "Name"),
        TextField("url", "URL", placeholder="https://huggingface.co"),
        TextField("space", "Mirror space"),
        TextField("token", "Token", password=True, required=False),
        ChoiceField("visibility", "Visibility", ("internal", "private", "public")),
    ),
)
MIRROR_FIELDS: list[Field] = [
    TextField("repo", "Repo", placeholder="org/name"),
    TextField("revision", "Revision", placeholder="main", required=False),
    NumberField("refresh_hours", "Refresh every", default=0, minimum=0),
]


def peer_cell(peer: dict, key: str) -> object:
    """One cell of a peer's row: times as times, reachability and tokens as words."""
    if key == "created_at":
        return fmt.when(peer[key])
    if key == "token":  # an upstream's: whether it has one, never the token
        return fmt.plain("sealed" if peer["token"] else "none")
    if key == "answers":
        return fmt.plain("answers" if peer["answers"] else f"no answer: {peer['no_answer']}")
    return fmt.plain(peer[key])


class PeersPane(Pane):
    """Every zone, or every deploy target: add and remove."""

    BINDINGS = [
        Binding("n", "add", "Add"),
        Binding("x", "remove", "Remove"),
    ]

    def __init__(self, kind: PeerKind, *, id: str) -> None:
        super().__init__(id=id)
        self.kind = kind
        self.peers: dict[str, dict] = {}
        self._loaded = False

    def compose(self) -> ComposeResult:
        """A count over the table."""
        yield Static("", classes="count bar", id=f"{self.id}-count", markup=False)
        yield DataTable(cursor_type="row", id=f"{self.id}-table")

    def on_mount(self) -> None:
        """Set up the columns."""
        for key, label in self.kind.columns:
            self.table.add_column(label, key=key)

    @property
    def table(self) -> DataTable:
        """The list of peers."""
        return self.query_one(DataTable)

    @property
    def loaded(self) -> bool:
        """Whether the list was loaded once."""
        return self._loaded

    def focus_list(self) -> None:
        """Focus the table."""
        self.table.focus()

    @property
    def selected(self) -> dict | None:
        """The peer under the cursor."""
        key = cursor_key(self.table)
        return None if key is None else self.peers.get(key)

    def reload(self) -> None:
        """Ask for the list again."""
        self._load()

    @work(group="peers-load", exclusive=True)
    async def _load(self) -> None:
        peers = await self.ask(self.client.peers(self.kind.path))
        if peers is None:
            return
        self.peers = {peer["name"]: peer for peer in peers}
        self.table.clear()
        for peer in peers:
            cells = [peer_cell(peer, key) for key, _ in self.kind.columns]
            self.table.add_row(*cells, key=peer["name"])
        self.query_one(f"#{self.id}-count", Static).update(fmt.count(len(peers), self.kind.noun))
        self._loaded = True

    @work(group="peers-change")
    async def action_add(self) -> None:
        """Register a new one."""
        added = await self.app.push_screen_wait(
            FormScreen(
                f"Add a {self.kind.noun}",
                list(self.kind.fields),
                lambda values: self.client.add_peer(self.kind.path, _given(values)),
                action=f"Add {self.kind.noun}",
            )
        )
        if added is not None:
            self.post_message(PeersChanged(self.kind.path, added["name"], added=True))
            self.notify(f"{self.kind.noun} {added['name']} added")
            self.reload()

    @work(group="peers-change")
    async def action_remove(self) -> None:
        """Forget the selected one."""
        peer = self.selected
        if peer is None:
            return
        question = f"Remove {self.kind.noun} {peer['name']} ({peer['url']})?"
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        if await self.ask(self.client.remove_peer(self.kind.path, peer["name"])) is not None:
            self.post_message(PeersChanged(self.kind.path, peer["name"], added=False))
            self.notify(f"{self.kind.noun} {peer['name']} removed")
            self.reload()


class UpstreamsPane(PeersPane):
    """Every upstream: add, remove, and mirror one of its repos."""

    BINDINGS = [Binding("m", "mirror", "Mirror a repo")]

    @work(group="peers-change")
    async def action_mirror(self) -> None:
        """Mirror a repo of the selected upstream; its task shows in the tasks tab."""
        upstream = self.selected
        if upstream is None:
            return
        name = upstream["name"]
        task = await self.app.push_screen_wait(
            FormScreen(
                f"Mirror a repo of {name} into {upstream['space']}",
                MIRROR_FIELDS,
                lambda values: self.client.start_mirror(name, _given(values)),
                action="Start mirror",
                note="Revision: a branch or tag (main if empty). Refresh every: hours"
                " between fetches of it again; 0 for none.",
            )
        )
        if task is not None:
            self.post_message(TaskStarted(task))
            self.notify(f"mirror of {task['model']} queued as task {task['id']}")


def _given(values: dict) -> dict:
    """The values of a form without its optional fields left empty."""
    return {name: value for name, value in values.items() if value != ""}

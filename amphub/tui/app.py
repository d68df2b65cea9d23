"""The console: a header, one tab per area, the footer; and the one way to ask the server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.widgets import Footer, Static, TabbedContent, TabPane

from amphub.tui.client import ApiClient, RequestRefused, ServerUnreachable
from amphub.tui.commands import ActionCommands
from amphub.tui.forms import FormScreen, TextField
from amphub.tui.header import ConsoleHeader
from amphub.tui.help import HelpScreen
from amphub.tui.messages import ConnectionLost, ConnectionRegained, TaskStarted
from amphub.tui.models import ModelsPane
from amphub.tui.pane import Pane
from amphub.tui.peers import TARGETS, UPSTREAMS, ZONES, PeersPane, UpstreamsPane
from amphub.tui.spaces import SpacesPane
from amphub.tui.tasks import TasksPane
from amphub.tui.users import UsersPane

T = TypeVar("T")
RETRY_SECONDS = 2.0
TABS: tuple[tuple[str, str, Callable[[], Pane]], ...] = (
    ("users", "Users", lambda: UsersPane(id="users")),
    ("spaces", "Spaces", lambda: SpacesPane(id="spaces")),
    ("models", "Models", lambda: ModelsPane(id="models")),
    ("tasks", "Tasks", lambda: TasksPane(id="tasks")),
    ("zones", "Zones", lambda: PeersPane(ZONES, id="zones")),
    ("targets", "Targets", lambda: PeersPane(TARGETS, id="targets")),
    ("upstreams", "Upstreams", lambda: UpstreamsPane(UPSTREAMS, id="upstreams")),
)


class ConsoleApp(App[None]):
    """The administrator's console over a running server's JSON API."""

    TITLE = "amphub console"
    CSS_PATH = "console.tcss"
    COMMANDS = App.COMMANDS | {ActionCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(number), f"show_tab('{name}')", f"{title} tab", show=False)
            for number, (name, title, _) in enumerate(TABS, start=1)
        ),
        Binding("question_mark", "help", "Keys"),
        Binding("ctrl+k", "enter_key", "Enter a key"),
    ]

    user_label: reactive[str] = reactive("")
    connected: reactive[bool | None] = reactive(None)
    key_refused: reactive[str] = reactive("")

    def __init__(self, client: ApiClient, *, retry_seconds: float = RETRY_SECONDS) -> None:
        super().__init__()
        self.client = client
        self.retry_seconds = retry_seconds
        self.user_name = ""

    def compose(self) -> ComposeResult:
        """Header, the tabs (numbered by the key that shows them), footer."""
        yield ConsoleHeader(id="header")
        yield Static("", id="signed-out", markup=False)
        with TabbedContent(id="tabs"):
            for number, (name, title, make) in enumerate(TABS, start=1):
                with TabPane(f"{number} {title}", id=f"tab-{name}"):
                    yield make()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Sign in, show the first tab, and keep checking a lost connection."""
        self.set_interval(self.retry_seconds, self._retry)
        self._sign_in()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Show a notification, its text as it is.

        Names and the server's sentences may hold square brackets, so they are never
        read as markup, whatever the caller asks.
        """
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    async def on_unmount(self) -> None:
        """Close the connections to the server."""
        await self.client.close()

    @property
    def panes(self) -> list[Pane]:
        """The tabs' panes, in order."""
        main = self.screen_stack[0]
        return [main.query_one(f"#{name}", Pane) for name, _, _ in TABS]

    def tab_title(self, pane: Pane) -> str:
        """The name of a pane's tab."""
        return next(title for name, title, _ in TABS if name == pane.id)

    @property
    def active_pane(self) -> Pane:
        """The pane of the tab shown."""
        active = self.screen_stack[0].query_one(TabbedContent).active
        return self.screen_stack[0].query_one(f"#{active.removeprefix('tab-')}", Pane)

    async def ask(self, call: Awaitable[T], *, raise_refused: bool = False) -> T | None:
        """The answer to one API call, or None after telling the user what went wrong.

        A refusal becomes a notification with the server's own sentence, or is raised
        for a caller that shows it itself (a form); no answer at all marks the
        connection lost until a later call gets through.
        """
        try:
            answer = await call
        except RequestRefused as exc:
            self._answered()
            if raise_refused:
                raise
            if exc.status == 401:
                self._key_was_refused(exc.message)
                return None
            title = f"{exc.status} {exc.code}".strip()
            self.notify(exc.message, title=title, severity="error", timeout=8)
            return None
        except ServerUnreachable as exc:
            self._lost(str(exc))
            return None
        self._answered()
        return answer

    def _lost(self, reason: str) -> None:
        if self.connected is not False:
            self.connected = False
            self.notify(
                f"{self.client.url} does not answer ({reason}); retrying every"
                f" {self.retry_seconds:g} s",
                title="connection lost",
                severity="error",
                timeout=8,
            )
            self.post_message(ConnectionLost(reason))

    def _answered(self) -> None:
        was = self.connected
        self.connected = True
        if was is False:
            self.notify(f"{self.client.url} answers again", title="connection regained")
            self.post_message(ConnectionRegained())
            if not self.user_label:
                self._sign_in()
            for pane in self.panes:
                if pane.loaded or pane is self.active_pane:
                    pane.reload()

    async def _retry(self) -> None:
        if self.connected is False:
            await self.ask(self.client.me())

    @work(group="sign-in", exclusive=True)
    async def _sign_in(self) -> None:
        me = await self.ask(self.client.me())
        if me is not None:
            self._signed_in(me)

    def _signed_in(self, me: dict) -> None:
        self.key_refused = ""
        self.user_name = me["name"]
        self.user_label = f"{me['name']} (administrator)" if me["admin"] else me["name"]
        if not me["admin"]:
            self.notify(
                f"{me['name']} is not an administrator: users, zones, targets and upstreams"
                " are refused",
                severity="warning",
                timeout=8,
            )
        pane = self.active_pane
        if not pane.loaded:
            pane.reload()
        pane.focus_list()

    def _key_was_refused(self, reason: str) -> None:
        first = not self.key_refused
        self.key_refused = reason
        self.user_name = self.user_label = ""
        if first:
            self.action_enter_key()

    def watch_key_refused(self, reason: str) -> None:
        """Without a key the server takes, the tabs give way to the refusal and the way out."""
        main = self.screen_stack[0] if self.screen_stack else None
        if main is None or not main.query("#signed-out"):
            return
        main.query_one("#signed-out", Static).update(
            f"Not signed in: the server refused the key ({reason}).\n"
            "Press ctrl+k to enter an administrator's key, or ctrl+q to quit."
        )
        main.query_one("#signed-out").display = bool(reason)
        main.query_one(TabbedContent).display = not reason

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer ctrl+k only while signed out."""
        if action == "enter_key":
            return bool(self.key_refused)
        return True

    @work(group="enter-key")
    async def action_enter_key(self) -> None:
        """Sign in with another key."""
        if not self.key_refused or isinstance(self.screen, FormScreen):
            return

        async def sign_in(values: dict) -> dict:
            self.client.use_key(values["key"])
            return await self.client.me()

        note = (
            f"The server refused the key: {self.key_refused}."
            " Enter an administrator's key; esc stays signed out."
        )
        field = TextField("key", "Key", password=True)
        me = await self.push_screen_wait(
            FormScreen("Sign in", [field], sign_in, action="Sign in", note=note)
        )
        if me is not None:
            self._signed_in(me)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Load a tab's list the first time it is shown."""
        pane = self.active_pane
        if not pane.loaded and self.connected and not self.key_refused:
            pane.reload()
        pane.focus_list()

    def on_task_started(self, _event: TaskStarted) -> None:
        """Show a new task in the tasks tab."""
        tasks = self.screen_stack[0].query_one("#tasks", Pane)
        if tasks.loaded:
            tasks.reload()

    def action_help(self) -> None:
        """Every key of the screen shown, and those that work everywhere."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_show_tab(self, name: str) -> None:
        """Go back to the tabs and show one (none while signed out: their lists are refused)."""
        if self.key_refused:
            return
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.screen_stack[0].query_one(TabbedContent).active = f"tab-{name}"
        self.screen_stack[0].query_one(f"#{name}", Pane).focus_list()

    async def run_pane_action(self, name: str, action: str) -> None:
        """Show a tab and run one of its pane's actions (for the command palette)."""
        self.action_show_tab(name)
        await self.run_action(action, self.screen_stack[0].query_one(f"#{name}", Pane))

"""The `?` screen: every key of the screen it was opened on, and those that work everywhere."""

from __future__ import annotations

from collections.abc import Iterator

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from amphub.tui.commands import Tabs, bindings_of
from amphub.tui.fitted_table import FittedTable
from amphub.tui.paged_table import OpenablePagedTable, OpenableTable

OPENABLE = (OpenableTable, OpenablePagedTable)

# Keys that Textual's own widgets answer, not listed in any binding of ours.
MOVING = (
    ("↑ ↓ pgup pgdn home end", "Move in a list"),
    ("tab shift+tab", "Go to the next or previous line, box or list"),
)


def _section(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
    table.add_column(Text(title, style="bold"), width=24, no_wrap=True)
    table.add_column("")
    for key, what in rows:
        table.add_row(Text(key, style="bold"), Text(what))
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of `screen` by area, then the keys that work everywhere."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.shown_screen = screen

    def sections(self) -> Iterator[tuple[str, list[tuple[str, str]]]]:
        """Each area's title and its keys with what they do."""
        app = self.app
        if self.shown_screen is app.screen_stack[0] and isinstance(app, Tabs):
            for pane in app.panes:
                keys = [(app.get_key_display(b), b.description) for b in bindings_of(pane)]
                if any(isinstance(t, OPENABLE) for t in pane.query(FittedTable)):
                    keys.insert(0, ("enter", "Open the selected line"))
                yield f"{app.tab_title(pane)} tab", keys
        else:
            name = type(self.shown_screen).__name__.removesuffix("Screen")
            keys = [(app.get_key_display(b), b.description) for b in bindings_of(self.shown_screen)]
            yield name, keys
        everywhere = [(app.get_key_display(b), b.description) for b in bindings_of(app)]
        everywhere.append(
            (
                app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "")),
                "Find an action by name",
            )
        )
        yield "Everywhere", everywhere + list(MOVING)

    def compose(self) -> ComposeResult:
        """One table of keys per area, scrolling if the terminal is short."""
        with VerticalScroll(classes="dialog help"):
            yield Static("Keys", classes="dialog-title", markup=False)
            for title, rows in self.sections():
                yield Static(_section(title, rows), classes="help-section")
            yield Static("esc, ? or q: close", classes="dialog-hint", markup=False)
        yield Footer(compact=True)

    def action_close(self) -> None:
        """Back to the screen the keys are of."""
        self.dismiss(None)

"""The line at the top of every screen: which server, which user, and whether it answers."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from amphub.tui.console import console_of


class ConsoleHeader(Static):
    """`amphub · URL · user · ● connected`, following the app's connection state."""

    def on_mount(self) -> None:
        """Draw again whenever the user or the connection changes."""
        for name in ("user_label", "connected", "key_refused"):
            self.watch(self.app, name, self._changed)

    def _changed(self, _value: object) -> None:
        self.refresh()

    def render(self) -> Text:
        """One line; the connection state last, where the eye ends."""
        console = console_of(self)
        if console.connected is None:
            state = Text("… connecting", style="yellow")
        elif console.connected:
            state = Text("● connected", style="green")
        else:
            state = Text("✕ connection lost, retrying", style="bold red")
        if console.key_refused:
            user = Text("✕ key refused: ctrl+k to enter a key", style="bold red")
        else:
            user = Text(console.user_label or "not signed in", style="bold")
        return Text.assemble(
            ("amphub", "bold"),
            " · ",
            (console.client.url, "underline"),
            " · ",
            user,
            " · ",
            state,
        )

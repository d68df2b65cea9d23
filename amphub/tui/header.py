"""The line at the top of every screen: which server, which user, and whether it answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from amphub.tui.app import ConsoleApp


class ConsoleHeader(Static):
    """`amphub · URL · user · ● connected`, following the app's connection state."""

    def on_mount(self) -> None:
        """Draw again whenever the user or the connection changes."""
        for name in ("user_label", "connected"):
            self.watch(self.app, name, lambda _value: self.refresh())

    def render(self) -> Text:
        """One line; the connection state last, where the eye ends."""
        app = cast("ConsoleApp", self.app)
        if app.connected is None:
            state = Text("… connecting", style="yellow")
        elif app.connected:
            state = Text("● connected", style="green")
        else:
            state = Text("✕ connection lost, retrying", style="bold red")
        return Text.assemble(
            ("amphub", "bold"),
            " · ",
            (app.client.url, "underline"),
            " · ",
            (app.user_label or "not signed in", "bold"),
            " · ",
            state,
        )

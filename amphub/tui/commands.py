"""The command palette: every action that has a key, found by its name.

The entries come from the bindings themselves, so an action added to a tab or a
screen is in the palette without being listed twice.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from functools import partial
from typing import Protocol, runtime_checkable

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from amphub.tui.pane import Pane


@runtime_checkable
class Tabs(Protocol):
    """What the palette needs of the app: its tabs' panes, their titles, running their actions."""

    @property
    def panes(self) -> list[Pane]:
        """The tabs' panes, in order."""
        ...

    def tab_title(self, pane: Pane) -> str:
        """The name of a pane's tab."""
        ...

    async def run_pane_action(self, name: str, action: str) -> None:
        """Show a tab and run one of its pane's actions."""
        ...


def bindings_of(node: DOMNode) -> Iterator[Binding]:
    """The bindings a node's class and its bases declare that have a description."""
    seen: set[str] = set()
    for cls in type(node).__mro__:
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.description and binding.key not in seen:
                seen.add(binding.key)
                yield binding


def explain(node: DOMNode, action: str) -> str:
    """The first line of the docstring of the method an action runs, as the entry's help."""
    name = action.split("(")[0]
    if name.startswith("app."):
        node, name = node.app, name.removeprefix("app.")
    method = getattr(node, f"action_{name}", None)
    doc = inspect.getdoc(method) if method else None
    return doc.splitlines()[0] if doc else ""


def help_line(node: DOMNode, binding: Binding) -> str:
    """The entry's key, then what its action does: `n · Create a space …`."""
    key = node.app.get_key_display(binding)
    return " · ".join(part for part in (key, explain(node, binding.action)) if part)


class ActionCommands(Provider):
    """Palette entries named `Area: action`, for the tabs or the screen it was opened on."""

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app = self.app
        if not isinstance(app, Tabs):
            raise TypeError(f"the palette's actions are the console's, not {app!r}'s")
        if self.screen is app.screen_stack[0]:
            for pane in app.panes:
                for binding in bindings_of(pane):
                    text = f"{app.tab_title(pane)}: {binding.description}"
                    run_in_tab = partial(app.run_pane_action, pane.id or "", binding.action)
                    yield text, help_line(pane, binding), run_in_tab
        else:
            area = type(self.screen).__name__.removesuffix("Screen")
            for binding in bindings_of(self.screen):
                text = f"{area}: {binding.description}"
                run_on_screen = partial(app.run_action, binding.action, self.screen)
                yield text, help_line(self.screen, binding), run_on_screen
        for binding in bindings_of(app):
            run = partial(app.run_action, binding.action)
            yield f"Console: {binding.description}", help_line(app, binding), run

    async def discover(self) -> Hits:
        """Every entry, before anything is typed."""
        for text, help_text, run in self._commands():
            yield DiscoveryHit(text, run, text, help_text)

    async def search(self, query: str) -> Hits:
        """The entries that match what was typed, best first."""
        matcher = self.matcher(query)
        for text, help_text, run in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, text, help_text)

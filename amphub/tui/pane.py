"""What every tab and detail screen shares: the way to the server, and its bindings' words."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar, TypeVar, cast

from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import DOMNode

from amphub.tui.client import ApiClient
from amphub.tui.console import Console, console_of
from amphub.tui.paged_table import PagedTable

T = TypeVar("T")


class ServerAccess:
    """Mixed into widgets and screens that call the server through the app."""

    @property
    def console(self) -> Console:
        """The running console."""
        return console_of(cast(DOMNode, self))

    @property
    def client(self) -> ApiClient:
        """The API client."""
        return self.console.client

    async def ask(self, call: Awaitable[T]) -> T | None:
        """The answer, or None after the app has told the user what went wrong."""
        return await self.console.ask(call)


class Pane(ServerAccess, Vertical):
    """One tab: a list and the actions on its selected item.

    A pane loads its list the first time it is shown, and again on `r` and after the
    connection comes back.
    """

    TITLE: ClassVar[str] = ""
    BINDINGS = [Binding("r", "reload", "Refresh")]

    @property
    def loaded(self) -> bool:
        """Whether the list was ever loaded."""
        raise NotImplementedError

    def reload(self) -> None:
        """Ask the server for the list again."""
        raise NotImplementedError

    def focus_list(self) -> None:
        """Put the focus on the list."""
        raise NotImplementedError

    def action_reload(self) -> None:
        """Refresh the list."""
        self.reload()


class PagedPane(Pane):
    """A tab whose list is a PagedTable, read from the server a page at a time."""

    @property
    def table(self) -> PagedTable:
        """The list."""
        return self.query_one(PagedTable)

    @property
    def loaded(self) -> bool:
        """Whether the list was loaded once."""
        return self.table.loaded

    def reload(self) -> None:
        """Load the first page again."""
        self.table.reload()

    def focus_list(self) -> None:
        """Focus the table."""
        self.table.focus()

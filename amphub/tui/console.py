"""What the tabs, screens and header use of the running console, without importing the app."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, TypeVar, runtime_checkable

from textual.dom import DOMNode

from amphub.tui.client import ApiClient

T = TypeVar("T")


@runtime_checkable
class Console(Protocol):
    """The app as its parts see it: the server, who is signed in, whether it answers."""

    @property
    def client(self) -> ApiClient:
        """The API client."""
        ...

    @property
    def user_name(self) -> str:
        """The signed-in user's name, empty until signed in."""
        ...

    @property
    def user_label(self) -> str:
        """The signed-in user as the header shows them."""
        ...

    @property
    def key_refused(self) -> str:
        """Why the server refused the key, empty while it takes it."""
        ...

    @property
    def connected(self) -> bool | None:
        """Whether the server answered the last call; None before the first."""
        ...

    async def ask(self, call: Awaitable[T], *, raise_refused: bool = False) -> T | None:
        """The answer, or None after telling the user what went wrong.

        With `raise_refused`, the server's refusal is raised as RequestRefused instead.
        """
        ...


def console_of(node: DOMNode) -> Console:
    """The console app a widget or screen runs in.

    Raises:
        TypeError: the node runs in another app, one that is not a console.
    """
    app = node.app
    if not isinstance(app, Console):
        raise TypeError(f"{type(node).__name__} runs only in the console, not in {app!r}")
    return app

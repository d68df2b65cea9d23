"""Dialogs: a form of fields, a yes/no question, and a new key shown once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Checkbox, Footer, Input, Label, Select, Static

from amphub.tui.client import RequestRefused
from amphub.tui.console import console_of


class Invalid(Exception):
    """A field's value cannot be used; the message says why."""


@dataclass(frozen=True)
class TextField:
    """A line of text; required unless said otherwise."""

    name: str
    label: str
    default: str = ""
    placeholder: str = ""
    required: bool = True
    password: bool = False
    suggester: Suggester | None = None

    def widget(self) -> Widget:
        """The input for this field, completing what is typed if it has a suggester."""
        return Input(
            self.default,
            self.placeholder,
            password=self.password,
            suggester=self.suggester,
            compact=True,
            id=self.name,
        )

    def read(self, widget: Any) -> str:
        """The stripped text; Invalid if a required field is empty."""
        value = widget.value.strip()
        if self.required and not value:
            raise Invalid(f"{self.label} is needed")
        return value


@dataclass(frozen=True)
class NumberField:
    """A whole number, at least `minimum`."""

    name: str
    label: str
    default: int = 1
    minimum: int = 1

    def widget(self) -> Widget:
        """The input for this field: digits only."""
        return Input(str(self.default), type="integer", compact=True, id=self.name)

    def read(self, widget: Any) -> int:
        """The number; Invalid if it is missing or too small."""
        try:
            value = int(widget.value)
        except ValueError:
            raise Invalid(f"{self.label} must be a whole number") from None
        if value < self.minimum:
            raise Invalid(f"{self.label} must be at least {self.minimum}")
        return value


@dataclass(frozen=True)
class ChoiceField:
    """One of a few values, the first by default."""

    name: str
    label: str
    options: tuple[str, ...]
    default: str | None = None

    def widget(self) -> Widget:
        """A drop-down of the options."""
        return Select(
            [(option, option) for option in self.options],
            value=self.default or self.options[0],
            allow_blank=False,
            compact=True,
            id=self.name,
        )

    def read(self, widget: Any) -> str:
        """The chosen value."""
        return widget.value


@dataclass(frozen=True)
class FlagField:
    """A yes/no box."""

    name: str
    label: str
    default: bool = False

    def widget(self) -> Widget:
        """A check box."""
        return Checkbox(self.label, self.default, id=self.name)

    def read(self, widget: Any) -> bool:
        """Whether the box is checked."""
        return widget.value


Field = TextField | NumberField | ChoiceField | FlagField
# Sends a form's values, by field name, and answers what the server made of them.
Submit = Callable[[dict[str, Any]], Awaitable[Any]]


class FormScreen(ModalScreen[Any]):
    """Fields to fill in for one action, open until the server accepts them.

    `submit` sends the values and answers what the server made of them; the form
    answers that, or None when dismissed. A refusal, of a field or by the server, is
    shown in the form, which stays open for another try: the keys typed next still go
    to the form, never to the list behind it.
    """

    # ctrl+s is bound for each form, named by its action.
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, fields: list[Field], submit: Submit, *, action: str, note: str = ""
    ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.submit = submit
        self.action_name = action
        self.note = note
        self.sending = False
        self._bindings.bind("ctrl+s", "submit", action)

    def compose(self) -> ComposeResult:
        """The title, an optional note, one line per field and the place for a refusal."""
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)
            for field in self.fields:
                with Horizontal(classes="field"):
                    label = "" if isinstance(field, FlagField) else field.label
                    yield Label(label, classes="field-label")
                    yield field.widget()
            yield Static("", id="form-error", classes="dialog-error", markup=False)
            yield Static(
                f"enter or ctrl+s: {self.action_name} · esc: cancel",
                classes="dialog-hint",
                markup=False,
            )
        yield Footer(compact=True)

    @property
    def error(self) -> str:
        """The refusal shown, empty if none."""
        return str(self.query_one("#form-error", Static).render())

    def _refused(self, message: str) -> None:
        self.query_one("#form-error", Static).update(message)
        self.query_one("#form-error").display = bool(message)

    def on_mount(self) -> None:
        """No refusal yet."""
        self._refused("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in any line submits the form."""
        event.stop()
        self.action_submit()

    @work(group="form-submit")
    async def action_submit(self) -> None:
        """Check every field and send them; close with the answer, or say what is wrong."""
        if self.sending:
            return
        self.sending = True
        try:
            values = {f.name: f.read(self.query_one(f"#{f.name}")) for f in self.fields}
            answer = await console_of(self).ask(self.submit(values), raise_refused=True)
        except Invalid as exc:
            self._refused(str(exc))
            return
        except RequestRefused as exc:
            self._refused(f"{exc.status} {exc.code}: {exc.message}".replace(" :", ":"))
            return
        finally:
            self.sending = False
        if answer is None:
            self._refused("not sent: the server does not answer; try again")
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question about something that cannot be undone."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        """The question and the keys that answer it."""
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title", markup=False)
            yield Static("y: yes · n or esc: no", classes="dialog-hint", markup=False)
        yield Footer(compact=True)

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)


class KeyScreen(ModalScreen[None]):
    """A new key, shown this once: the server keeps only its hash."""

    BINDINGS = [
        Binding("c", "copy", "Copy"),
        Binding("escape,enter", "close", "Close"),
    ]

    def __init__(self, user: str, key: str) -> None:
        super().__init__()
        self.user = user
        self.key = key

    def compose(self) -> ComposeResult:
        """The key on a line of its own, and how to copy it."""
        with Vertical(classes="dialog"):
            yield Static(f"The key of {self.user}", classes="dialog-title", markup=False)
            yield Static(
                "Shown this once: copy it now and give it to its user.",
                classes="dialog-note",
                markup=False,
            )
            yield Static(self.key, id="key", markup=False)
            yield Static(
                "c: copy to the clipboard · enter or esc: close",
                classes="dialog-hint",
                markup=False,
            )
        yield Footer(compact=True)

    def action_copy(self) -> None:
        """Put the key on the terminal's clipboard."""
        self.app.copy_to_clipboard(self.key)
        self.notify("the key is on the clipboard")

    def action_close(self) -> None:
        """Close; the key is not shown again."""
        self.dismiss(None)

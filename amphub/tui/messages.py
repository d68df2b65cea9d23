"""What happened in the console, as past-tense messages that bubble up to the app."""

from __future__ import annotations

from textual.message import Message


class ConnectionLost(Message):
    """A request found no server; the console keeps retrying."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class ConnectionRegained(Message):
    """The server answers again after it was lost."""


class UserCreated(Message):
    """A user was created; its key was shown once."""

    def __init__(self, user: dict) -> None:
        super().__init__()
        self.user = user


class UserChanged(Message):
    """A user's roles or disabled flag changed."""

    def __init__(self, user: dict) -> None:
        super().__init__()
        self.user = user


class KeyRegenerated(Message):
    """A user got a new key; the old one no longer works."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class SpaceChanged(Message):
    """A space was created, or its quota or expiration changed."""

    def __init__(self, space: dict) -> None:
        super().__init__()
        self.space = space


class SpaceUnsubscribed(Message):
    """A space was released; its data is being deleted."""

    def __init__(self, space_id: str) -> None:
        super().__init__()
        self.space_id = space_id


class MembersChanged(Message):
    """A member of a space or model was added, changed or removed."""

    def __init__(self, scope: str, user: str, role: str | None) -> None:
        super().__init__()
        self.scope = scope
        self.user = user
        self.role = role


class ModelChanged(Message):
    """A model's visibility changed."""

    def __init__(self, model: dict) -> None:
        super().__init__()
        self.model = model


class TaskStarted(Message):
    """A scan, sync, deploy or mirror was queued."""

    def __init__(self, task: dict) -> None:
        super().__init__()
        self.task = task


class TaskCanceled(Message):
    """A task was canceled, or asked to stop."""

    def __init__(self, task: dict) -> None:
        super().__init__()
        self.task = task


class PeersChanged(Message):
    """A zone, deploy target or upstream was added or removed."""

    def __init__(self, kind: str, name: str, added: bool) -> None:
        super().__init__()
        self.kind = kind
        self.name = name
        self.added = added

"""The one source of the current time, replaceable in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Format a moment as the API writes times: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """Read a time written by `rfc3339`."""
    return datetime.fromisoformat(text)  # every request's lifetime check: strptime is 50x slower

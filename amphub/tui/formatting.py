"""How the console writes sizes, times, flags and bars: short, so tables fit 80 columns."""

from __future__ import annotations

from rich.text import Text

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
BAR_WIDTH = 10
# Eighths of a cell, so a bar ten cells wide shows 80 steps.
EIGHTHS = " ▏▎▍▌▋▊▉"
STATUS_STYLES = {
    "in_use": "green",
    "grace_period": "yellow",
    "retention_period": "red",
    "released": "dim",
    "queued": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "canceled": "dim",
    "safe": "green",
    "suspicious": "yellow",
    "unsafe": "bold red",
    "error": "red",
}


def plain(value: object) -> object:
    """A table cell as it is: strings become Text, since DataTable reads a str as markup."""
    return Text(value) if isinstance(value, str) else value


def size(count: int | None) -> str:
    """Bytes in binary units with up to three significant digits: `1.5 GiB`."""
    if count is None:
        return "–"
    value, unit = float(count), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{count} B"
    return f"{value:.3g} {UNITS[unit]}"


def when(stamp: str | None) -> str:
    """An RFC 3339 UTC time as `2026-01-15 12:00`; a dash for none."""
    if not stamp:
        return "–"
    return stamp.replace("T", " ")[:16]


def day(stamp: str | None) -> str:
    """An RFC 3339 UTC time as its date, `2026-01-15`; a dash for none."""
    return stamp[:10] if stamp else "–"


def clip(text: str, width: int) -> str:
    """At most `width` characters, the cut marked with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def flag(value: bool) -> str:
    """A yes/no cell: a check mark or nothing."""
    return "✓" if value else ""


def status(value: str | None) -> Text:
    """A status word in its colour (`in_use` shows as `in use`)."""
    value = value or "–"
    return Text(value.replace("_", " "), style=STATUS_STYLES.get(value, ""))


def verdict(task: dict) -> str | None:
    """A finished scan's verdict (safe, suspicious, unsafe or error); None for other tasks."""
    return task.get("verdict")


def bar(fraction: float, width: int = BAR_WIDTH, style: str = "green") -> Text:
    """A horizontal bar filled to `fraction` (0 to 1) in eighths of a cell."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (EIGHTHS[part] if part else "")
    return Text(filled, style=style) + Text("░" * (width - len(filled)), style="dim")


def usage(used: int, quota: int) -> Text:
    """Size over quota with a bar that turns yellow past 80 % and red when full."""
    fraction = used / quota if quota else 1.0
    style = "red" if fraction >= 1 else "yellow" if fraction >= 0.8 else "green"
    return bar(fraction, style=style) + f" {size(used)}/{size(quota)}"


def progress(percent: int, state: str) -> Text:
    """A task's progress bar and percentage."""
    style = "green" if state == "succeeded" else "red" if state == "failed" else "cyan"
    return bar(percent / 100, style=style) + f" {percent:3d}%"


def short_commit(commit: str | None) -> str:
    """The first ten hex digits of a commit id."""
    return commit[:10] if commit else "–"


def count(number: int, noun: str) -> str:
    """`1 user`, `10,000 users`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"

"""How amphub writes sizes for people: in messages, pages and the console alike."""

from __future__ import annotations

SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int) -> str:
    """Bytes in the largest binary unit that keeps a number of at least 1, three digits.

    `512 B`, `2.00 MiB`, `64.0 KiB`, `123 GiB`.
    """
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{size} B"
    decimals = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{decimals}f} {SIZE_UNITS[unit]}"

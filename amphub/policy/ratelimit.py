"""How many failed sign-ins a client address may have, and for how long they count.

The window opens at an address's first failure and closes `WINDOW_SECONDS` later; the
`limit`-th failure inside it (the `sign_in_limit` setting) refuses the address until it
closes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

WINDOW_SECONDS = 300


def retry_after(opened: datetime, failures: int, now: datetime, limit: int) -> float:
    """Seconds until an address with `failures` in the window opened at `opened` may try again."""
    if failures < limit:
        return 0.0
    return max((opened + timedelta(seconds=WINDOW_SECONDS) - now).total_seconds(), 0.0)

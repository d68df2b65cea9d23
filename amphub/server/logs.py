"""A bound on repeated log lines: a flood of one failure writes a few lines, not megabytes.

asyncio logs each failed accept ("Too many open files") with its traceback, and aiohttp
each failed request: a client opening connections by the thousand would fill the disk.
"""

from __future__ import annotations

import logging
import time

# The loggers that write a line per connection or per request.
NOISY_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web")
LINES_PER_PERIOD = 5
PERIOD_SECONDS = 60.0
# Distinct lines remembered at most; past that the counts start again.
MAX_KINDS = 1000


class RepeatedLines(logging.Filter):
    """Let through at most `LINES_PER_PERIOD` records of one kind each period.

    A kind is a logger, a level and an unformatted message. The first line let through
    after some were left out says how many.
    """

    def __init__(self) -> None:
        super().__init__()
        self.kinds: dict[tuple[str, int, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to write `record`."""
        kind = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        if len(self.kinds) >= MAX_KINDS and kind not in self.kinds:
            self.kinds.clear()
        start, written, left_out = self.kinds.get(kind, (now, 0, 0))
        if now - start >= PERIOD_SECONDS:
            start, written = now, 0
        if written >= LINES_PER_PERIOD:
            self.kinds[kind] = (start, written, left_out + 1)
            return False
        if left_out:
            record.msg = f"{record.msg} [{left_out} more like this left out]"
        self.kinds[kind] = (start, written + 1, 0)
        return True


_FILTER = RepeatedLines()


def quiet_repeated_lines() -> None:
    """Put the filter on the noisy loggers (once, however many servers start)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)

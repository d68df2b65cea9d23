"""How `amphub serve` logs: each line with the node's name, as text or JSON lines.

A request is logged when answered (`AccessLogger`). Repeated lines are bounded: asyncio
logs each failed accept ("Too many open files") with its traceback, and aiohttp each
failed request: a client opening connections by the thousand would fill the disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from amphub.config import Config

ACCESS_LOGGER = "amphub.access"
# Lines waiting for the writer thread at most; past that they are dropped, not waited for.
QUEUED_LINES = 10_000

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


class AccessLogger(AbstractAccessLogger):
    """One line per answered request; the query is left out, since a signed href has a token."""

    @property
    def enabled(self) -> bool:
        """Whether lines are written at all (not in tests, where no handler is set up)."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Write the request's line."""
        fields = {
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time * 1000, 1),
            "agent": request.headers.get("User-Agent", ""),
        }
        self.logger.info('%s "%s %s" %s %s %sms "%s"', *fields.values(), extra={"access": fields})


class JsonLines(logging.Formatter):
    """A record as one JSON object: time, node, level, logger, message (and a request's fields).

    The message holds the traceback, if any: records reach it through `QueuedLines`.
    """

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        """The record's line."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "node": self.node,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "access", {}))
        return json.dumps(line, ensure_ascii=False)


class QueuedLines(logging.handlers.QueueHandler):
    """Hands each record to the writer thread, or drops it when that thread is far behind.

    The event loop never writes to standard error itself: a reader that stops reading (a
    full pipe, a stuck terminal) would otherwise hold every request at its access line.
    """

    def __init__(self) -> None:
        super().__init__(queue.Queue(QUEUED_LINES))
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        """Queue the record, or count it as dropped."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


@contextlib.contextmanager
def logging_to_stderr(config: Config) -> Iterator[None]:
    """Write amphub's lines (from INFO on) and everyone else's warnings, naming the node.

    Lines are written by a thread of their own; those still queued are written at the end.
    """
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonLines(config.node))
    else:
        node = config.node.replace("%", "%%")
        text = f"%(asctime)s {node} %(levelname)s %(name)s: %(message)s"
        handler.setFormatter(logging.Formatter(text))
    queued = QueuedLines()
    writer = logging.handlers.QueueListener(queued.queue, handler)
    root = logging.getLogger()
    root.addHandler(queued)
    root.setLevel(logging.WARNING)
    logging.getLogger("amphub").setLevel(logging.INFO)
    writer.start()
    try:
        yield
    finally:
        root.removeHandler(queued)
        writer.stop()
        if queued.dropped:
            sys.stderr.write(f"{queued.dropped} log lines were dropped: stderr was not read\n")

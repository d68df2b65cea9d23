"""What a scan process runs for one file: nothing here touches the database or the network."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import VerdictJson


def scan_content(name: str, file: str | None, data: bytes | None, size: int) -> VerdictJson:
    """The verdict (as JSON) of a file given by its path on disk or its bytes."""
    if file is not None:
        # scan_blob closes what the opener returns.
        verdict = scan_blob(name, lambda: Path(file).open("rb"), size)  # noqa: SIM115
    else:
        verdict = scan_blob(name, lambda: io.BytesIO(data or b""), size)
    return verdict.to_json()


PARENT_CHECK_SECONDS = 0.5


def leave_with_parent(parent: int) -> None:
    """Make this scan process end soon after the server that started it, however it ended.

    A pool's process holds both ends of its work queue, so it never sees the server go:
    after a `kill -9` it would stay, scanning and then waiting, for ever.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()

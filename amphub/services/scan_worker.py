"""What a scan process runs for one file: nothing here touches the database or the network."""

from __future__ import annotations

import io
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

"""Security scan of model files: pickles, other model formats, secrets, risky code.

``scan_blob`` (in ``dispatch``) is the entry point for one file; ``findings`` holds
the result types and limits. Nothing here unpickles, imports or executes what it
scans, and nothing touches the network.
"""

from amphub.scan.findings import (
    SCANNER_VERSION,
    FileVerdict,
    Finding,
    Limits,
    PickleImport,
    Status,
    worst,
)

__all__ = [
    "SCANNER_VERSION",
    "FileVerdict",
    "Finding",
    "Limits",
    "PickleImport",
    "Status",
    "worst",
]

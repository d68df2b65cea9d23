"""What a scan reports, the limits every scanner runs under, and the stream it reads.

The verdict of a file is the worst of what was found in it. Failing closed is the
rule: a parse error, a truncated stream or a limit reached makes the file ``error``
(or ``unsafe`` when something dangerous was already seen), never ``safe``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NotRequired, Protocol, TypedDict

SCANNER_VERSION = "1"

Status = Literal["safe", "suspicious", "unsafe", "error", "skipped"]
Safety = Literal["innocuous", "suspicious", "dangerous"]
Severity = Literal["info", "suspicious", "dangerous"]

_RANK: dict[str, int] = {"skipped": 0, "safe": 1, "suspicious": 2, "error": 3, "unsafe": 4}
_STATUS_OF_SEVERITY: dict[str, Status] = {
    "info": "safe",
    "suspicious": "suspicious",
    "dangerous": "unsafe",
}
_SAFETY_RANK = {"innocuous": 0, "suspicious": 1, "dangerous": 2}


class FindingJson(TypedDict):
    """A finding as JSON."""

    kind: str
    message: str
    severity: Severity
    line: NotRequired[int]
    masked: NotRequired[str]


class PickleImportJson(TypedDict):
    """A pickle import as JSON."""

    module: str
    name: str
    safety: Safety


class PickleImportScanJson(TypedDict):
    """The pickle imports of a file and the most dangerous of them, as Hugging Face names it."""

    pickleImports: list[PickleImportJson]
    status: Safety


class VerdictJson(TypedDict):
    """A file's verdict as JSON."""

    status: Status
    findings: list[FindingJson]
    pickleImportScan: NotRequired[PickleImportScanJson]


@dataclass(frozen=True)
class PickleImport:
    """A global a pickle imports, as the unpickler would resolve it."""

    module: str
    name: str
    safety: Safety


@dataclass(frozen=True)
class Finding:
    """One thing a scanner noticed in a file."""

    kind: str  # "pickle" | "format" | "secret" | "code" | "template"
    message: str
    severity: Severity
    line: int | None = None
    masked: str | None = None

    def to_json(self) -> FindingJson:
        """Return the finding as JSON, leaving out empty optional fields."""
        out: FindingJson = {"kind": self.kind, "message": self.message, "severity": self.severity}
        if self.line is not None:
            out["line"] = self.line
        if self.masked is not None:
            out["masked"] = self.masked
        return out


@dataclass(frozen=True)
class FileVerdict:
    """The scan result of one file."""

    status: Status
    findings: tuple[Finding, ...] = ()
    pickle_imports: tuple[PickleImport, ...] = ()

    def to_json(self) -> VerdictJson:
        """Return the verdict as JSON, with Hugging Face's field names where they exist."""
        out: VerdictJson = {
            "status": self.status,
            "findings": [f.to_json() for f in self.findings],
        }
        if self.pickle_imports:
            imports: list[PickleImportJson] = [
                {"module": i.module, "name": i.name, "safety": i.safety}
                for i in self.pickle_imports
            ]
            highest = max(self.pickle_imports, key=lambda i: _SAFETY_RANK[i.safety]).safety
            out["pickleImportScan"] = {"pickleImports": imports, "status": highest}
        return out


def worst(statuses: Iterable[Status]) -> Status:
    """Return the worst status: unsafe > error > suspicious > safe > skipped."""
    return max(statuses, key=_RANK.__getitem__, default="skipped")


class Stream(Protocol):
    """A seekable binary stream: a file, a zip member, a window on a file, a decompressor."""

    def read(self, n: int = -1, /) -> bytes:
        """Read up to ``n`` bytes (all that is left if ``n`` is negative)."""
        ...

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset`` (from the start, the position or the end); return the position."""
        ...

    def tell(self) -> int:
        """The current position."""
        ...

    def seekable(self) -> bool:
        """Whether seeking works (zipfile asks)."""
        ...


class ScanError(Exception):
    """The input could not be parsed; the message says where, for a person."""


class LimitReached(ScanError):
    """A limit (bytes, opcodes, entries, nesting, time) stopped the scan."""


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one blob may cost."""

    max_read_bytes: int = 256 * 1024**2  # read from the blob itself
    max_unpacked_bytes: int = 512 * 1024**2  # produced by decompression
    max_opcodes: int = 300_000_000  # enforced as bytes walked (each opcode is >= 1 byte)
    max_stack: int = 1_000_000  # pickle stack items plus marks
    max_zip_entries: int = 10_000
    max_depth: int = 4  # containers in containers: zip in zip, pickle in joblib
    max_seconds: float = 30.0
    max_text_bytes: int = 10 * 1024**2
    max_header_bytes: int = 100_000_000  # safetensors' own limit


class Budget:
    """What is left of the limits while one blob is scanned."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.read = 0
        self.unpacked = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def charge_read(self, n: int) -> None:
        """Count bytes read from the blob.

        Raises:
            LimitReached: More than ``max_read_bytes`` were read.
        """
        self.read += n
        if self.read > self.limits.max_read_bytes:
            raise LimitReached(f"read limit of {self.limits.max_read_bytes} bytes reached")

    def charge_unpacked(self, n: int) -> None:
        """Count bytes produced by decompression.

        Raises:
            LimitReached: More than ``max_unpacked_bytes`` were decompressed.
        """
        self.unpacked += n
        if self.unpacked > self.limits.max_unpacked_bytes:
            raise LimitReached(
                f"decompression limit of {self.limits.max_unpacked_bytes} bytes reached"
            )

    def check_time(self) -> None:
        """Stop a scan that ran too long.

        Raises:
            LimitReached: The wall-time limit passed.
        """
        if time.monotonic() > self.deadline:
            raise LimitReached(f"time limit of {self.limits.max_seconds:g} s reached")


class Report:
    """Collects findings and pickle imports while one blob is scanned."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.imports: dict[tuple[str, str], PickleImport] = {}
        self.failed = False
        self.skipped = False

    def add(self, kind: str, message: str, severity: Severity) -> None:
        """Record a finding (the same message is kept once)."""
        finding = Finding(kind, message, severity)
        if finding not in self.findings:
            self.findings.append(finding)

    def fail(self, kind: str, message: str) -> None:
        """Record that parsing failed or a limit was reached: the file is not safe."""
        self.failed = True
        self.add(kind, message, "suspicious")

    def add_import(self, module: str, name: str, safety: Safety, where: str = "") -> None:
        """Record a global a pickle imports; flagged ones also become findings."""
        key = (module, name)
        if key not in self.imports:
            self.imports[key] = PickleImport(module, name, safety)
        if safety != "innocuous":
            place = f" in {where}" if where else ""
            label = "runs code" if safety == "dangerous" else "not on the allow-list"
            severity: Severity = "dangerous" if safety == "dangerous" else "suspicious"
            self.add("pickle", f"pickle imports {module}.{name}{place} ({label})", severity)

    def verdict(self) -> FileVerdict:
        """Return the verdict: the worst over findings, ``error`` if parsing failed."""
        statuses: list[Status] = [_STATUS_OF_SEVERITY[f.severity] for f in self.findings]
        if self.failed:
            statuses.append("error")
        if self.skipped and worst(statuses) in ("safe", "skipped"):
            statuses = ["skipped"]  # info findings say why it was skipped
        if not statuses:
            statuses.append("safe")
        return FileVerdict(worst(statuses), tuple(self.findings), tuple(self.imports.values()))

r"""Scan one blob: sniff its format by content (then by name) and run the right scanner.

Rules, with the reason next to each:

- Content decides before the name: loaders look at the first bytes (torch.load
  treats a file as a zip only if it starts with ``PK\x03\x04``, numpy likewise), so
  a ``.bin`` that is really a zip is scanned as a zip, and a pickle followed by a zip
  as a pickle.
- Every zip member is looked at — by name (``*.pkl``, ``*.npy``, Keras'
  ``config.json``) and by content (a pickle under an odd name, a zip in a zip) —
  but only its first bytes, unless it is a pickle: tensor data is never read.
- Stored zip members are read straight from the blob at the offset in their local
  header (whose name must match the central directory's); the entry count and the
  central directory's size are checked before ``zipfile`` reads it, and entries that
  overlap (a zip bomb's trick) are refused.
- Compressed files (by magic) and tar archives are opened as the loaders open them
  and what they hold is scanned like a file (see ``archives``).
- A file that begins with a pickle opcode is also read as a pickle, whatever else it
  is (the GGUF magic is BINFLOAT): the verdict is the worst of the readings.
- Fail closed: a parse error or a limit makes the file ``error``; a file with a
  pickle's extension that is no known format is an error too. Only unknown binaries
  with other names are ``skipped``; empty files are skipped as harmless.
"""

from __future__ import annotations

import logging
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import BinaryIO

from amphub.scan import archives, formats
from amphub.scan.findings import (
    Budget,
    FileVerdict,
    LimitReached,
    Limits,
    Report,
    ScanError,
    Stream,
)
from amphub.scan.pickles import PickleScan, scan_legacy_torch_member, scan_pickles

log = logging.getLogger(__name__)

PICKLE_SUFFIXES: tuple[str, ...] = (
    ".pkl",
    ".pickle",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".joblib",
    ".sav",
    ".p",
)
PICKLE_SUFFIXES += (".pck", ".pcl", ".dill", ".pkl.gz", ".joblib.gz", ".z")
# zlib's magic is two bytes that text can begin with: only trusted with a pickle's name.
_ZLIB = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_CODEC_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".z")
_DATA_MAGIC = {b"lmgg": "GGML", b"fmgg": "GGMF", b"tjgg": "GGJT", b"\xba\x16\x4f\x2f": "fastText"}
# Opcodes a pickle can start with (the unpickler needs no PROTO): worth a try.
_PICKLE_START = frozenset(b"(}])cNILFSVUTXKJMGBCP\x82\x83\x84\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x95")
_NAMED_FORMATS = (".npy", ".npz", ".keras", ".h5", ".hdf5", ".gguf")  # with their own magic
_MAX_CONFIG = 64 * 1024**2
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
DEFAULT_LIMITS = Limits()
# What zipfile and the decompressors raise on damaged input.
_UNREADABLE: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
)
_UNREADABLE += (NotImplementedError, UnicodeDecodeError, tarfile.TarError)


def scan_blob(
    path: str, open_blob: Callable[[], BinaryIO], size: int, *, limits: Limits = DEFAULT_LIMITS
) -> FileVerdict:
    """Scan one file of a repository; never raises for bad input.

    Args:
        path: The file's path in the repository (its name guides the sniffing).
        open_blob: Opens the content as a seekable binary file.
        size: The content's size in bytes.
        limits: Bounds on the work (bytes, opcodes, zip entries, nesting, time).

    Returns:
        The verdict; ``error`` when the content did not parse or a limit was reached.
    """
    report, budget = Report(), Budget(limits)
    try:
        with open_blob() as raw:
            _scan(_Counted(raw, budget, unpacked=False), size, path, report, budget, 0)
    except ScanError as exc:
        report.fail("format", f"{path}: {exc}")
    except _UNREADABLE as exc:
        report.fail("format", f"could not read {path}: {exc}")
    except Exception:  # fail closed: a scanner bug must not pass a file as safe
        log.exception("scanning %s failed", path)
        report.fail("format", "internal scanner error")
    return report.verdict()


def _scan(
    f: Stream,
    size: int,
    path: str,
    report: Report,
    budget: Budget,
    depth: int,
    *,
    text: bool = False,
) -> None:
    """Scan a file (or a member) positioned at its start; ``text``: read text members too."""
    if depth > budget.limits.max_depth:
        raise LimitReached(f"nesting limit of {budget.limits.max_depth} reached in {path}")
    head = archives.read_head(f)
    f.seek(0)
    name = path.lower()
    # A file can be two formats at once (GGUF's magic is a pickle opcode too): a loader
    # that takes it for a pickle runs it, so it is read as one too and the worst wins.
    sniffed = False
    if head and head[0] in _PICKLE_START and not name.endswith(PICKLE_SUFFIXES):
        sniffed = head[:2] != b"PK" and _sniff_pickle(f, path, report, budget, depth)
        f.seek(0)
    if not head:
        report.skipped = True
        report.add("format", "empty file", "info")
    elif head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        _scan_zip(f, size, path, report, budget, depth)
    elif archives.is_tar(head):
        for member, n, content in archives.tar_members(f, path, report, budget, forward=False):
            _scan(content, n, f"{path}:{member}", report, budget, depth + 1, text=True)
    elif codec := archives.codec_of(head):
        _scan_compressed(f, codec, path, report, budget, depth)
    elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        _scan_proto_pickle(f, path, report, budget, depth)
    elif head.startswith(b"\x93NUMPY"):
        _scan_npy(f, path, report, budget, depth)
    elif head.startswith(b"GGUF"):
        _scan_gguf(f, report, budget)
    elif head.startswith(b"\x89HDF\r\n\x1a\n"):
        formats.scan_hdf5(f, size, report)
    elif name.endswith(".safetensors") or (head[8:9] == b"{" and _u64(head) <= size - 8):
        formats.scan_safetensors(f, size, report, budget)
    elif name.endswith(".onnx"):
        formats.scan_onnx(f, size, report, budget)
    elif any(head.startswith(m) for m in _DATA_MAGIC):
        kind = next(v for m, v in _DATA_MAGIC.items() if head.startswith(m))
        report.add("format", f"{kind} model data", "info")
    elif name.endswith(PICKLE_SUFFIXES + _NAMED_FORMATS):
        _scan_pickle_named(f, head, path, report, budget, depth)
    elif depth == 0 or text:  # zip members of no known format are data: not read further
        _scan_other(f, size, path, report, budget, depth=depth, skip=depth == 0 and not sniffed)


def known_format(head: bytes, name: str) -> bool:
    """Whether a file's first bytes (or its name) say it is a format the scanner reads."""
    name = name.lower()
    return (
        head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"GGUF", b"\x89HDF"))
        or head[:1] == b"\x80"
        or archives.is_tar(head)
        or archives.codec_of(head) is not None
        or name.endswith(PICKLE_SUFFIXES + _NAMED_FORMATS + (".safetensors", ".onnx"))
        or (head[8:9] == b"{" and _u64(head) < DEFAULT_LIMITS.max_header_bytes)
        or (bool(head) and head[0] in _PICKLE_START and b"\0" in head)  # a binary pickle
    )


def _scan_compressed(
    f: Stream, codec: str, path: str, report: Report, budget: Budget, depth: int
) -> None:
    """A compressed file, whatever its name: what it holds is scanned like a file."""
    if depth >= budget.limits.max_depth:
        raise LimitReached(f"nesting limit of {budget.limits.max_depth} reached in {path}")
    stream = _Counted(archives.decompressed(codec, f), budget, unpacked=True)
    report.add("format", f"{path}: {codec} compressed, read decompressed", "info")
    inner = path[: -len(s)] if (s := _codec_suffix(path)) else path
    _scan_forward(stream, inner, report, budget, depth, top=depth == 0, rewinds=True)


def _codec_suffix(path: str) -> str:
    return next((s for s in _CODEC_SUFFIXES if path.lower().endswith(s)), "")


def _scan_forward(
    f: Stream,
    path: str,
    report: Report,
    budget: Budget,
    depth: int,
    *,
    top: bool,
    rewinds: bool = False,
) -> None:
    """Scan content that is read forward once: a decompressed file, a compressed tar's member.

    A tar is read as it streams (when ``f`` can go back to its start, as a decompressor
    can; a tar member holding a tar is copied first); content of a known format is
    copied to a spooled file (the scanners seek), text up to the text limit; other data
    is not read.
    """
    head = archives.read_head(f)
    if archives.is_tar(head) and rewinds:
        f.seek(0)
        members = archives.tar_members(f, path, report, budget, forward=True)
        for member, _, content in members:
            _scan_forward(content, f"{path}:{member}", report, budget, depth + 1, top=False)
        return
    if known_format(head, path):
        limit = budget.limits.max_unpacked_bytes
    elif b"\0" not in head:
        limit = budget.limits.max_text_bytes
    else:
        report.skipped |= top
        report.add("format", f"{path}: data of no known model format, not read", "info")
        return
    copy, size = archives.spool(head, f, budget, limit)
    with copy:
        if size > limit:
            report.skipped |= top
            report.add("format", f"{path}: text over {limit} bytes, not read", "info")
            return
        _scan(copy, size, path, report, budget, depth + 1, text=True)


def _scan_proto_pickle(f: Stream, path: str, report: Report, budget: Budget, depth: int) -> None:
    """A pickle; the members of a legacy torch tar that mix pickles and raw records too."""
    legacy = path.rpartition(":")[2]
    if ":" in path and legacy in ("storages", "tensors"):
        scan = scan_legacy_torch_member(f, legacy, budget, depth)
    else:
        scan = scan_pickles(f, budget, depth=depth)
    _merge(scan, report, path, strict=True)


def _scan_pickle_named(
    f: Stream, head: bytes, path: str, report: Report, budget: Budget, depth: int
) -> None:
    """A file whose name says pickle (or a format it failed to be): fail closed."""
    if head.startswith(_ZLIB) and not path.lower().endswith(_NAMED_FORMATS):
        _scan_compressed(f, "zlib", path, report, budget, depth)
        return
    if path.lower().endswith(PICKLE_SUFFIXES):
        _merge(scan_pickles(f, budget, depth=depth), report, path, strict=True)
        return
    raise ScanError(f"{path}: not the format its name says")


def _sniff_pickle(f: Stream, path: str, report: Report, budget: Budget, depth: int) -> bool:
    """Scan as a pickle if it parses as one (or dangerously begins as one)."""
    return _merge(scan_pickles(f, budget, depth=depth), report, path, strict=False)


def _scan_other(
    f: Stream, size: int, path: str, report: Report, budget: Budget, *, depth: int, skip: bool
) -> None:
    """Text (UTF-8, -16 or -32) goes to the text scanners; other binaries are skipped."""
    from amphub.scan import literals, text  # late: the text scanners are a separate concern

    head = f.read(8192)
    wide = b"\0" in head and (head.startswith(_WIDE_BOMS) or literals.wide_codec(head))
    if size <= budget.limits.max_text_bytes and (b"\0" not in head or wide):
        data = literals.as_utf8(head + f.read(size - len(head)))
        if data is not None:
            for finding in text.scan_text(path, data):
                where = f"{path}: " if depth else ""  # a member: say which
                report.findings.append(replace(finding, message=where + finding.message))
            if path.lower().endswith(".json") and b'"class_name"' in data:
                formats.scan_keras_json(data, report)
            return
    if skip:
        report.skipped = True
        report.add("format", "binary file of no known model format", "info")


def _merge(scan: PickleScan, report: Report, where: str, strict: bool) -> bool:
    """Add a pickle scan to the report; a sniff that did not parse is dropped.

    Not strict (the name does not say pickle): only a stream that parses to its end
    is a pickle — unless it imports something dangerous before failing, which the
    unpickler would already have run.
    """
    if not strict and (scan.error or not scan.pickles) and not scan.dangerous:
        return False
    for (module, name), safety in scan.imports.items():
        if strict or not scan.error or safety == "dangerous":
            report.add_import(module, name, safety, where)
    for note in scan.notes:
        report.add("pickle", f"{where}: {note}", "info")
    if scan.error:
        report.fail("pickle", f"{where}: {scan.error}")
    return True


def _scan_npy(f: Stream, path: str, report: Report, budget: Budget, depth: int) -> None:
    has_object, offset = formats.npy_header(f)
    if has_object:  # np.load(allow_pickle=True) unpickles the data
        report.add("format", f"{path}: NumPy object array (a pickle)", "info")
        data = archives.Window(f, offset, None)
        _merge(scan_pickles(data, budget, depth=depth + 1), report, path, True)
    else:
        report.add("format", f"{path}: NumPy array, data not read", "info")


def _scan_gguf(f: Stream, report: Report, budget: Budget) -> None:
    templates = formats.scan_gguf(f, report, budget)
    if templates:
        from amphub.scan import text  # late: the text scanners are a separate concern

        for key, template in templates:
            report.findings.extend(text.scan_chat_template(template, f"GGUF {key}"))


def _scan_zip(f: Stream, size: int, path: str, report: Report, budget: Budget, depth: int) -> None:
    """Scan every member of a zip (torch checkpoint, npz, .keras, or any other)."""
    _check_directory(f, size, budget.limits)
    with zipfile.ZipFile(f) as archive:
        infos = [i for i in archive.infolist() if not i.filename.endswith("/")]
        _check_overlaps(infos, size)
        for info in infos:
            budget.check_time()
            where = f"{path}:{info.filename}"
            member = _open_member(archive, f, info, budget)
            mname = info.filename.lower()
            if mname.endswith((".pkl", ".pickle")):
                _merge(scan_pickles(member, budget, depth=depth + 1), report, where, True)
            elif mname.endswith("config.json") and path.lower().endswith(".keras"):
                if info.file_size > _MAX_CONFIG:
                    raise ScanError(f"{where}: Keras config of {info.file_size} bytes")
                formats.scan_keras_config(member.read(), report)
            else:
                _scan(member, info.file_size, where, report, budget, depth + 1)


def _check_directory(f: Stream, size: int, limits: Limits) -> None:
    """Refuse a central directory with too many entries before zipfile reads it."""
    f.seek(max(0, size - 42))  # the end record, and the zip64 locator before it
    tail = f.read()
    if tail.rfind(b"PK\x05\x06") != len(tail) - 22:  # a zip comment follows the record
        f.seek(max(0, size - 65536 - 42))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise ScanError("zip end record not found")
    entries, cd_size = struct.unpack("<xxxxxxxxxxHI", tail[at : at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:
        if at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":
            raise ScanError("zip64 end record locator not found")
        f.seek(struct.unpack("<Q", tail[at - 12 : at - 4])[0])
        record = f.read(56)
        if record[:4] != b"PK\x06\x06":
            raise ScanError("zip64 end record not found")
        entries, cd_size = struct.unpack("<QQ", record[32:48])
    f.seek(0)
    if entries > limits.max_zip_entries:
        raise LimitReached(f"zip entry limit of {limits.max_zip_entries} reached ({entries})")
    if cd_size > limits.max_zip_entries * 1024:
        raise LimitReached(f"zip central directory of {cd_size} bytes")


def _check_overlaps(infos: list[zipfile.ZipInfo], size: int) -> None:
    if any(i.header_offset < 0 for i in infos):
        raise ScanError("zip entry before the start of the file")
    spans = sorted((i.header_offset, i.header_offset + 30 + i.compress_size) for i in infos)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise ScanError("zip entries overlap (a zip bomb trick)")
    if spans and spans[-1][1] > size:
        raise ScanError("zip entry runs past the end of the file")


def _open_member(
    archive: zipfile.ZipFile, f: Stream, info: zipfile.ZipInfo, budget: Budget
) -> Stream:
    """A stored member as a window on the blob; a compressed one as a stream."""
    if info.flag_bits & 1:
        raise ScanError(f"encrypted zip member {info.filename}")
    if info.compress_type != zipfile.ZIP_STORED:
        return _Counted(archive.open(info), budget, unpacked=True)
    f.seek(info.header_offset)
    local = f.read(30)
    if local[:4] != b"PK\x03\x04":
        raise ScanError(f"bad local header for zip member {info.filename}")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    if f.read(name_len) != info.orig_filename.encode(
        "utf-8" if info.flag_bits & 0x800 else "cp437"
    ):
        raise ScanError(f"zip member {info.filename}: local and central names differ")
    if info.compress_size != info.file_size:
        raise ScanError(f"stored zip member {info.filename} with two sizes")
    start = info.header_offset + 30 + name_len + extra_len
    return archives.Window(f, start, info.file_size)


def _u64(head: bytes) -> int:
    return struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 1 << 64


class _Counted:
    """A file whose reads are charged to the budget (raw or decompressed bytes)."""

    def __init__(self, f: Stream, budget: Budget, *, unpacked: bool) -> None:
        self.f, self.unpacked = f, unpacked
        self.charge = budget.charge_unpacked if unpacked else budget.charge_read

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.charge(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self.unpacked:
            return self.f.seek(offset, whence)
        # A decompressor seeks by decompressing: charge that before it happens.
        before = self.f.tell()
        if whence != 2:
            target = offset + (before if whence == 1 else 0)
            self.charge(target - before if target >= before else target)
        after = self.f.seek(offset, whence)
        if whence == 2:
            self.charge(max(0, after - before))
        return after

    def tell(self) -> int:
        return self.f.tell()

    def seekable(self) -> bool:
        return True

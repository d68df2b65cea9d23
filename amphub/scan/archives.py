r"""Containers other than zip: compressed streams and tar archives, read as loaders read them.

Rules, with the reason next to each:

- Compression is recognised by its magic, never by the name: ``joblib.load``
  decompresses gzip, bz2, xz and lzma whatever the file is called, and SageMaker
  ships models as ``model.tar.gz``. joblib's old ``ZF`` files (a hex length, then a
  zlib stream) are unwrapped the same way.
- Decompression is streamed and charged to the blob's budget as it happens (the
  ``max_unpacked_bytes`` limit is the zips' total inflated size); nothing is ever
  inflated whole into memory. What must be read with seeks (a pickle, a zip, a
  header) is copied to a spooled temporary file first: in memory when small, on disk
  when not.
- A tar is read like a zip: every member, the same depth and entry limits. A plain
  tar's members are windows on the blob (tensor bytes never read); a compressed
  tar is read forward once. Members whose path leaves the extraction directory (an
  absolute path, ``..``, a link pointing out) are dangerous: ``tarfile.extractall``
  without a filter, as SageMaker and many scripts call it, writes there.
- Compressed content of no known format is not read past what tells it apart; a
  large compressed data set is data, and reading it to the end would only hit the
  decompression limit.
- PyTorch's oldest checkpoints are tars of ``sys_info``, ``pickle``, ``tensors`` and
  ``storages``; the last two mix pickles with raw tensor bytes, which are stepped
  over using the sizes torch itself reads (see ``legacy_torch``).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from typing import IO

from amphub.scan.findings import Budget, LimitReached, Report, ScanError, Stream

_HEAD = 512  # enough for a tar header's magic at 257
_SPOOL_IN_MEMORY = 8 * 1024**2
_CODECS = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"),  # lzma "alone": properties 0x5d, as joblib writes it
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")
# joblib < 0.10: "ZF", the data's length as hex padded to 19 characters, zlib data.
_JOBLIB_ZF = re.compile(rb"ZF0x[0-9a-fA-F]{1,16}L? *\x78")
_ZF_HEADER = 21


def codec_of(head: bytes) -> str | None:
    """The compression a file's first bytes announce (None: not compressed)."""
    for magic, codec in _CODECS:
        if head.startswith(magic):
            return codec
    if _BZIP2.match(head):
        return "bz2"
    if _JOBLIB_ZF.match(head):
        return "joblib-zf"
    return None


def is_tar(head: bytes) -> bool:
    """Whether a file begins with a POSIX or GNU tar header."""
    return len(head) >= 262 and head[257:262] == b"ustar"


def decompressed(codec: str, f: Stream) -> Stream:
    """A decompressing reader over ``f`` (seeks are served by decompressing again)."""
    if codec == "gzip":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if codec == "bz2":
        return bz2.BZ2File(f)
    if codec in ("xz", "lzma"):
        return lzma.LZMAFile(f)  # type: ignore[arg-type]
    if codec == "joblib-zf":
        f.seek(_ZF_HEADER)
    return ZlibReader(f)


def read_head(f: Stream, n: int = _HEAD) -> bytes:
    """Up to ``n`` bytes from a stream that may return short reads."""
    head = b""
    while len(head) < n and (data := f.read(n - len(head))):
        head += data
    return head


def spool(head: bytes, f: Stream, budget: Budget, limit: int) -> tuple[IO[bytes], int]:
    """Copy ``head`` and the rest of ``f`` (at most ``limit`` bytes) to a temporary file.

    Returns:
        The file, at its start, and the number of bytes copied; a copy that stopped
        at ``limit`` has ``limit + 1`` bytes.
    """
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    out.write(head)
    size = len(head)
    while size <= limit and (data := f.read(min(1 << 20, limit + 1 - size))):
        out.write(data)
        size += len(data)
        budget.check_time()
    out.seek(0)
    return out, size


def tar_members(
    f: Stream, path: str, report: Report, budget: Budget, *, forward: bool
) -> Iterator[tuple[str, int, Stream]]:
    """Yield (name, size, content) for each regular file of a tar, within the limits.

    On a seekable blob (``forward`` false) the content is a window on it; on a
    stream read forward once (a compressed tar) it is the member's reader, valid
    until the next member is asked for.
    """
    try:
        mode = "r|" if forward else "r:"
        archive = tarfile.open(fileobj=f, mode=mode)  # type: ignore[call-overload]  # noqa: SIM115
    except tarfile.TarError as exc:
        raise ScanError(f"tar archive does not open: {exc}") from None
    count = 0
    with archive:
        while True:
            budget.check_time()
            try:
                info = archive.next()
            except tarfile.TarError as exc:
                raise ScanError(f"bad tar header: {exc}") from None
            if info is None:
                return
            count += 1
            if count > budget.limits.max_zip_entries:
                raise LimitReached(f"tar entry limit of {budget.limits.max_zip_entries} reached")
            _check_extraction(info, path, report)
            if not info.isreg():
                continue
            if forward:
                member = archive.extractfile(info)
                if member is not None:
                    yield info.name, info.size, member
            else:
                yield info.name, info.size, Window(f, info.offset_data, info.size)


def _check_extraction(info: tarfile.TarInfo, path: str, report: Report) -> None:
    where = f"{path}:{info.name}"
    if _escapes(info.name):
        report.add("format", f"{where}: tar member path leaves the archive", "dangerous")
    if info.issym() or info.islnk():
        target = info.linkname
        if info.issym() and not target.startswith("/"):
            target = "/".join(info.name.split("/")[:-1] + [target])
        if _escapes(target):
            report.add("format", f"{where}: tar link points outside the archive", "dangerous")
    elif info.ischr() or info.isblk() or info.isfifo():
        report.add("format", f"{where}: tar device or pipe member", "suspicious")


def _escapes(name: str) -> bool:
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return True
    depth = 0
    for part in re.split(r"[/\\]", name):
        depth += -1 if part == ".." else int(part not in ("", "."))
        if depth < 0:
            return True
    return False


class Window:
    """A view of ``length`` bytes (None: to the end) of a seekable file from ``start``."""

    def __init__(self, f: Stream, start: int, length: int | None) -> None:
        if length is None:
            length = f.seek(0, 2) - start
        self.f, self.start, self.length, self.pos = f, start, length, 0

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (the rest if negative)."""
        n = self.length - self.pos if n < 0 else min(n, self.length - self.pos)
        if n <= 0:
            return b""
        self.f.seek(self.start + self.pos)
        data = self.f.read(n)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to ``offset``; return the position."""
        self.pos = max(0, offset + (0, self.pos, self.length)[whence])
        return self.pos

    def tell(self) -> int:
        """The position."""
        return self.pos

    def seekable(self) -> bool:
        """Always: seeks are served."""
        return True


class ZlibReader:
    """One zlib stream, read forward (seeks by decompressing): joblib's zlib files."""

    def __init__(self, f: Stream) -> None:
        self.f, self.start = f, f.tell()
        self._restart()

    def _restart(self) -> None:
        self.f.seek(self.start)
        self.z, self.pos, self.buf = zlib.decompressobj(), 0, b""

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (the rest if negative)."""
        while (n < 0 or len(self.buf) < n) and not self.z.eof:
            chunk = self.f.read(65536)
            if not chunk:
                break
            self.buf += self.z.decompress(chunk)
        data, self.buf = (self.buf, b"") if n < 0 else (self.buf[:n], self.buf[n:])
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to ``offset``; return the position."""
        target = offset + (0, self.pos)[whence]
        if target < self.pos:
            self._restart()
        while self.pos < target and self.read(min(target - self.pos, 1 << 20)):
            pass
        return self.pos

    def tell(self) -> int:
        """The position."""
        return self.pos

    def seekable(self) -> bool:
        """Always: seeks are served."""
        return True

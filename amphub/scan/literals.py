r"""Text in the encodings editors save, and string literals that code joins, made plain.

- UTF-16 and UTF-32 (with a byte-order mark, or without one when every other byte,
  or three in four, is NUL as ASCII text makes them) are decoded to UTF-8 before the
  text rules run; the decoded text must be printable, so arrays of small integers
  are not taken for text. Line numbers are kept, as newlines map one to one.
- A token split across string literals that Python or JavaScript joins (``"gh" "p_…"``,
  ``'gh' + 'p_…'``, across lines in parentheses or after a backslash) is reassembled:
  each chain of two to 16 literals becomes one line, ``<what precedes it on its
  line>"<joined>"``, so the assignment rule still sees the name. Literals with
  escapes are left alone. Every quantifier is bounded and possessive, so the search
  is linear in the file.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SAMPLE = 4096
_PRINTABLE_SHARE = 0.95

# A literal without escapes; group 1, 2 or 3 is its content. It begins at its quote
# (a prefix letter like f or r is simply left before it), so ``re`` can skip to quotes;
# empty literals are left out, which keeps triple-quoted strings (docstrings) out too.
_QUOTED = rb""""([^"\\\n]{1,256}+)"|'([^'\\\n]{1,256}+)'"""
_TEMPLATE = rb"""|`([^`\\$]{1,256}+)`"""  # JavaScript only: Python docs quote code in backticks
_SEPARATOR = rb"[ \t\r\n\\]{0,64}+\+?[ \t\r\n\\]{0,64}+[rRuUfF]{0,2}"


def _chain(literal: bytes) -> re.Pattern[bytes]:
    return re.compile(literal + rb"(?:" + _SEPARATOR + literal + rb"){1,15}+")


_LITERAL = rb"(?:" + _QUOTED + rb")"
_LITERAL_JS = rb"(?:" + _QUOTED + _TEMPLATE + rb")"
_PARTS = re.compile(_LITERAL_JS)
_CHAINS = {False: _chain(_LITERAL), True: _chain(_LITERAL_JS)}
# Two literals with only a separator between: files without one have no chain.
_JOIN_HINT = re.compile(
    rb"""["'`][ \t]{0,64}+(?:\+[ \t\r\n\\]{0,64}+|\\?\r?\n[ \t]{0,64}+\+?[ \t]{0,64}+)?"""
    rb"""[rRuUfF]{0,2}["'`]"""
)
_PREFIX = 80  # characters kept before a chain: enough for `api_key = `
MAX_CHAINS = 10_000


def as_utf8(data: bytes) -> bytes | None:
    """The text as UTF-8 if it is UTF-8, UTF-16 or UTF-32; None if it is not text.

    Args:
        data: The file's bytes.

    Returns:
        ``data`` itself when it is UTF-8 already, else the decoded text re-encoded.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decoded(data[len(bom) :], codec)
    if b"\0" not in data[:8192]:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return data
    wide = wide_codec(data[:_SAMPLE])
    return _decoded(data, wide) if wide else None


def wide_codec(sample: bytes) -> str | None:
    """UTF-32 or UTF-16 (either byte order) if the NUL bytes fall as ASCII text puts them."""
    sample = sample[: len(sample) // 4 * 4]
    if len(sample) < 8:
        return None
    for codec, width, where in (
        ("utf-32-le", 4, 0),
        ("utf-32-be", 4, 3),
        ("utf-16-le", 2, 0),
        ("utf-16-be", 2, 1),
    ):
        units = [sample[i : i + width] for i in range(0, len(sample), width)]
        ascii_like = sum(u[where] != 0 and u.count(0) == width - 1 for u in units)
        if ascii_like >= 0.9 * len(units):
            return codec
    return None


def _decoded(data: bytes, codec: str) -> bytes | None:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    sample = text[:_SAMPLE]
    printable = sum(c.isprintable() or c in "\t\r\n" for c in sample)
    if sample and printable < _PRINTABLE_SHARE * len(sample):
        return None
    return text.encode("utf-8")


def joined_literals(data: bytes, *, templates: bool) -> tuple[bytes, list[int]]:
    """Each chain of joined string literals as a line of its own, and its line in ``data``.

    Args:
        data: The source.
        templates: Whether backticks quote strings (JavaScript and TypeScript).

    Returns:
        The lines (newline-separated) and, for each, the 1-based line it came from.
    """
    lines: list[bytes] = []
    origins: list[int] = []
    line, pos = 1, 0
    if _JOIN_HINT.search(data) is None:
        return b"", origins
    for match in _CHAINS[templates].finditer(data):
        if len(lines) == MAX_CHAINS:
            break
        start = match.start()
        line += data.count(b"\n", pos, start)
        pos = start
        line_start = data.rfind(b"\n", 0, start) + 1
        prefix = data[max(line_start, start - _PREFIX) : start]
        joined = b"".join(b"".join(parts) for parts in _PARTS.findall(match.group()))
        lines.append(prefix + b'"' + joined + b'"')
        origins.append(line)
    return b"\n".join(lines), origins

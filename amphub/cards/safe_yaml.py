"""YAML front matter → plain Python values, safely and in bounded time.

Security rules, with the reason next to each:

- Values are built from parser events by the small builder below — PyYAML's composer
  and constructors never run — so no tag can construct an object or call a function
  (``!!python/object/apply:os.system`` is just a string we refuse). Only ``!``,
  ``!!str``, ``!!seq`` and ``!!map`` are honoured; any other tag drops its value with
  a warning, the rest of the document still counts.
- Depth and node count are checked as events arrive, before anything is built deeper
  or bigger: PyYAML's composer recurses in Python (and libyaml's in C), so a
  1,000-deep document must never reach it. An alias counts as the size of the node it
  names, so a billion-laughs document stops after MAX_NODES, not after 10⁹.
- An alias to a node that is still open is refused: it would make a cycle.
- Plain scalars are typed by the YAML 1.2 core schema (null, true/false, numbers);
  ``no``, ``on``, ``yes`` and dates stay text, as language tags like ``no`` need.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import yaml

MAX_DEPTH = 64
MAX_NODES = 100_000

# libyaml parses several times faster; the limits above hold with either parser.
_LOADER = yaml.CBaseLoader if yaml.__with_libyaml__ else yaml.BaseLoader
_CORE = "tag:yaml.org,2002:"


# What a document builds to; mapping keys are scalars.
Scalar: TypeAlias = None | bool | int | float | str
Value: TypeAlias = "Scalar | list[Value] | dict[Scalar, Value]"


class Rejected(Exception):
    """The YAML is invalid or breaks a limit; the message says how, for a person."""


# Returns Any, not Value, for callers that read the document as dict[str, Any].
def load(text: str, warn: Callable[[str], None], first_line: int = 1) -> Any:
    """Build the first YAML document in ``text`` as dicts, lists, text and numbers.

    Args:
        text: The YAML.
        warn: Called with a sentence for each value dropped (a refused tag, a second
            document); the sentence names the top-level key it was under.
        first_line: The line number of the YAML's first line, for error messages.

    Returns:
        The document's value (None for an empty document).

    Raises:
        Rejected: The YAML is invalid, too deep, too big, or has a bad alias.
    """
    builder = _Builder(warn)
    try:
        parser = _LOADER(text)  # the pure-Python reader checks characters right here
        while (event := parser.get_event()) is not None:  # None after the stream's end
            builder.feed(event)
    except yaml.YAMLError as exc:
        raise Rejected(f"invalid YAML ({_problem(exc, first_line)})") from None
    return builder.root


def _problem(exc: yaml.YAMLError, first_line: int) -> str:
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "unreadable"
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + first_line}: {problem}" if mark is not None else str(problem)


_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _resolve(text: str) -> Scalar:
    """Type a plain scalar by the YAML 1.2 core schema."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    try:
        if _INT.fullmatch(text):
            return int(text, 0 if text[:2] in ("0o", "0x") else 10)
        if _FLOAT.fullmatch(text):
            return float(text)
    except ValueError:  # more digits than int() accepts: keep it as written
        return text
    return _SPECIAL_FLOATS.get(text.lower(), text)


class _NoKey(enum.Enum):  # a one-member enum: the type checker tells it from a key
    NO_KEY = enum.auto()


_NO_KEY = _NoKey.NO_KEY
_Collection: TypeAlias = list[Value] | dict[Scalar, Value]


class _Frame:
    """A collection being built: its value (None when dropped), anchor, size, pending key."""

    __slots__ = ("value", "anchor", "size", "key")

    def __init__(self, value: _Collection | None, anchor: str | None) -> None:
        self.value, self.anchor, self.size = value, anchor, 1
        self.key: Scalar | Literal[_NoKey.NO_KEY] = _NO_KEY


class _Builder:
    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Value, int]] = {}  # name → (value, expanded size)
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.documents = 0
        self.root: Value = None

    def feed(self, event: yaml.Event) -> None:
        if type(event) is yaml.ScalarEvent and self.documents == 1:  # most events: checked first
            self._scalar(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents == 2:
                self.warn("Front matter: more than one YAML document; only the first read")
        elif self.documents > 1 or isinstance(event, yaml.StreamStartEvent | yaml.StreamEndEvent):
            return
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, yaml.MappingStartEvent):
            self._start(event, dict, "map")
        elif isinstance(event, yaml.SequenceStartEvent):
            self._start(event, list, "seq")
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event.anchor or "")  # the parser always names an alias's anchor
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame = self.stack.pop()
            if frame.anchor:
                self.open_anchors.discard(frame.anchor)
                self.anchors[frame.anchor] = (frame.value, frame.size)
            self._attach(frame.value, frame.size)

    def _count(self, size: int) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise Rejected(f"more than {MAX_NODES} values counting aliases expanded")

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._count(0)
        value: Scalar = None
        if event.tag is None:
            text = event.value
            # Most plain scalars are words: no null, boolean or number begins with a letter
            # other than these (null, true/false, .inf/.nan come with "." or these letters).
            if not event.implicit[0] or (text[:1].isalpha() and text[0] not in "nNtTfF"):
                value = text
            else:
                value = _resolve(text)
        elif event.tag in ("!", _CORE + "str"):
            value = event.value
        else:
            self._refuse(event.tag)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)
        self._attach(value, 1)

    def _start(
        self, event: yaml.CollectionStartEvent, factory: Callable[[], _Collection], core: str
    ) -> None:
        self._count(1)
        if len(self.stack) >= MAX_DEPTH:
            raise Rejected(f"nested deeper than {MAX_DEPTH} levels")
        value: _Collection | None = None
        if event.tag is None or event.tag in ("!", _CORE + core):
            value = factory()
        else:
            self._refuse(event.tag)
        if event.anchor:  # until it is closed, an alias to it would make a cycle
            self.anchors.pop(event.anchor, None)
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(value, event.anchor))

    def _alias(self, name: str) -> None:
        if name not in self.anchors:
            problem = "refers to itself" if name in self.open_anchors else "is not defined"
            raise Rejected(f"alias *{name[:60]} {problem}")
        value, size = self.anchors[name]
        self._count(size)
        self._attach(value, size)

    def _refuse(self, tag: str) -> None:
        shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
        top = self.stack[0].key if self.stack else None
        field = top if isinstance(top, str) else "Front matter"
        self.warn(f"{field}: YAML tag {shown[:60]!r} is not allowed; value ignored")

    def _attach(self, value: Value, size: int) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        frame.size += size
        if isinstance(frame.value, list):
            frame.value.append(value)
        elif frame.value is None:  # inside a refused collection
            return
        elif frame.key is _NO_KEY:
            if isinstance(value, list | dict):
                raise Rejected("a mapping key is a list or mapping")
            frame.key = value
        else:
            frame.value[frame.key] = value
            frame.key = _NO_KEY

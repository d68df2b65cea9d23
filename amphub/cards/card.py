"""README.md → model card: front matter fields, description and warnings.

Pure functions over text: no I/O. Bad input never raises; it becomes a card warning
(a short sentence naming the field) and the rest of the card still fills.

Decisions where DESIGN.md and TAXONOMY.md are silent:

- Fences: the first line is ``---`` or `` ---``, the closing line exactly ``---``;
  a carriage return before the newline (CRLF) is allowed on both. A leading
  UTF-8 byte order mark is skipped. No front matter is an empty card with no warning;
  a first ``---`` with no closing line is a warning and the README is the description.
- Field names match ignoring case, spaces, hyphens and underscores, like values do.
- Hugging Face keys fill the same fields; an amphub field that is set (not null)
  wins over its Hugging Face key. ``model-index`` metrics are named by ``name``,
  falling back to ``type`` (what the Hub shows).
- A single text is accepted where a list is expected; ``Training framework`` also
  splits on commas. ``Job type`` may be one name (an algorithm, else a type).
- ``Number of parameters`` accepts whole numbers, ``1,700,000,000``, ``1 700 000 000``,
  ``1_700_000_000`` and ``1.7B``/``125M``/``350k``/``1.5T`` (or ``billion`` …).
- Metrics are finite numbers; ``"45.5"`` and ``"45.5%"`` read as 45.5.
- Links must be http(s) addresses (they are made clickable), else warned and dropped.
- Limits: front matter 64 KiB, description 1 MiB (cut, with a warning); only the
  first READ_LIMIT characters of a README are looked at, so 100 MB costs no more
  than 1 MiB. At most MAX_WARNINGS warnings, then a count of the rest.
- The description is the Markdown after the front matter; ATX sections (``#`` …)
  whose heading mentions performance, evaluation, result(s), benchmark, 评测, 性能
  or 评估 go, with their sub-sections, to ``performance_text``. ``#`` lines inside
  code fences are not headings. Text is kept as written, only trimmed at both ends.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, TypedDict

from amphub.cards import safe_yaml
from amphub.cards.safe_yaml import Scalar, Value
from amphub.cards.taxonomy import (
    canonical_algorithm,
    canonical_framework,
    canonical_task_type,
    match_key,
)

FRONT_MATTER_LIMIT = 64 * 1024  # characters of YAML between the fences
DESCRIPTION_LIMIT = 1024 * 1024  # characters of Markdown after the front matter
READ_LIMIT = FRONT_MATTER_LIMIT + DESCRIPTION_LIMIT + 64
MAX_WARNINGS = 50


@dataclass(frozen=True)
class Dataset:
    """A dataset a model was trained or evaluated on."""

    name: str
    permission: str | None
    link: str | None


@dataclass(frozen=True)
class Performance:
    """Metrics measured on one dataset."""

    dataset: Dataset
    metrics: dict[str, float]


@dataclass(frozen=True)
class Card:
    """The model card read from a README.md."""

    frameworks: tuple[str, ...] = ()
    task_type: str | None = None
    algorithm: str | None = None
    industry: str | None = None
    tags: tuple[str, ...] = ()
    parameters: int | None = None
    license: str | None = None
    performance: tuple[Performance, ...] = ()
    training_data: tuple[Dataset, ...] = ()
    description: str = ""
    performance_text: str = ""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the card in the API's shape: plain dicts, lists, text and numbers."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}

    def dataset_names(self) -> tuple[str, ...]:
        """Return the performance and training dataset names, each once, in order."""
        names = [p.dataset.name for p in self.performance] + [d.name for d in self.training_data]
        return tuple(dict.fromkeys(names))


class _Notes:
    """Collects warnings, keeping the first MAX_WARNINGS so a huge bad list stays small."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.append(message)
        else:
            self.dropped += 1

    def result(self) -> tuple[str, ...]:
        more = [f"… and {self.dropped} more warnings"] if self.dropped else []
        return (*self.items, *more)


def _q(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 60 else text[:59] + "…")


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, int | float) else "text"


def parse_card(readme: str | bytes) -> Card:
    """Read a README.md into a model card.

    Args:
        readme: The README's text, or its bytes (UTF-8; undecodable bytes are replaced).

    Returns:
        The card. Problems (bad YAML, wrong types, unknown values, limits) are in
        ``card.warnings``; this function does not raise on any input.
    """
    notes = _Notes()
    text, cut = _decode(readme, notes)
    front, body = _split_front_matter(text, notes)
    fields = _read_front_matter(front, notes) if front is not None else {}
    card = _card_fields(fields, notes)
    description, performance_text = _split_body(body, cut, notes)
    return Card(
        **card,
        description=description,
        performance_text=performance_text,
        warnings=notes.result(),
    )


_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _decode(readme: str | bytes, notes: _Notes) -> tuple[str, bool]:
    """Return the README's first READ_LIMIT characters and whether there was more."""
    if isinstance(readme, bytes | bytearray | memoryview):
        head = bytes(readme[: READ_LIMIT * 4])  # UTF-8 needs at most 4 bytes a character
        cut = len(head) < len(readme)
        try:  # where we cut, a character cut in two is not an error
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=not cut)
        except UnicodeDecodeError:
            text = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=not cut)
            notes.add("README: not valid UTF-8; undecodable bytes were replaced")
    else:
        text, cut = readme[:READ_LIMIT], len(readme) > READ_LIMIT
        if _SURROGATES.search(text):  # lone surrogates cannot be stored or sent as UTF-8
            text = _SURROGATES.sub("\ufffd", text)
            notes.add("README: invalid characters were replaced")
    start = 1 if text.startswith("\ufeff") else 0
    return text[start : start + READ_LIMIT], cut or len(text) > start + READ_LIMIT


# The fences hold "---" and nothing else, except that one space may stand before the
# first; a "\r" before the newline is part of a CRLF line ending, not of the line.
_OPEN = re.compile(r" ?---\r?\n")
_CLOSE = re.compile(r"\n---\r?(?:\n|\Z)")


def _split_front_matter(text: str, notes: _Notes) -> tuple[str | None, str]:
    opening = _OPEN.match(text)
    if not opening:
        return None, text
    closing = _CLOSE.search(text, opening.end() - 1)
    if not closing:
        notes.add("Front matter: no closing '---' line; the README was read as description")
        return None, text
    front = text[opening.end() : closing.start() + 1]
    if len(front) > FRONT_MATTER_LIMIT:
        notes.add(f"Front matter: longer than {FRONT_MATTER_LIMIT // 1024} KiB; ignored")
        return None, text[closing.end() :]
    return front, text[closing.end() :]


def _read_front_matter(front: str, notes: _Notes) -> dict[str, Value]:
    try:  # the YAML starts on the README's second line
        root: Value = safe_yaml.load(front, notes.add, first_line=2)
    except safe_yaml.Rejected as exc:
        notes.add(f"Front matter: {exc}; ignored")
        return {}
    if root is None:
        return {}
    if not isinstance(root, dict):
        notes.add(f"Front matter: expected fields (a mapping), got {_kind(root)}; ignored")
        return {}
    return _keyed(root)


def _keyed(mapping: dict[Scalar, Value]) -> dict[str, Value]:
    """Index a mapping by key ignoring case, spaces, hyphens and underscores."""
    return {match_key(key): value for key, value in mapping.items() if isinstance(key, str)}


def _text(value: Value, field: str, notes: _Notes) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is not None:
        notes.add(f"{field}: expected text, got {_kind(value)}; ignored")
    return None


def _texts(value: Value, field: str, notes: _Notes) -> list[str]:
    """Read a list of text; a single text counts as a list of one."""
    if value is None:
        return []
    if not isinstance(value, list):
        if isinstance(value, dict):
            notes.add(f"{field}: expected a list, got a mapping; ignored")
            return []
        value = [value]
    texts = (_text(item, f"{field} (item {i})", notes) for i, item in enumerate(value, 1))
    return list(dict.fromkeys(text for text in texts if text))


class _CardFields(TypedDict):
    frameworks: tuple[str, ...]
    task_type: str | None
    algorithm: str | None
    industry: str | None
    tags: tuple[str, ...]
    parameters: int | None
    license: str | None
    performance: tuple[Performance, ...]
    training_data: tuple[Dataset, ...]


def _card_fields(fields: dict[str, Value], notes: _Notes) -> _CardFields:
    frameworks = _frameworks(*_pick(fields, "trainingframework", "libraryname"), notes)
    task_type, algorithm = _job_type(fields, notes)  # warnings in field order
    return {
        "frameworks": frameworks,
        "task_type": task_type,
        "algorithm": algorithm,
        "industry": _text(fields.get("industry"), "Industry", notes),
        "tags": tuple(_texts(*_pick(fields, "othertag", "tags"), notes)),
        "parameters": _parameters(fields.get("numberofparameters"), notes),
        "license": _text(*_pick(fields, "opensourceprotocol", "license"), notes),
        "performance": _performance(*_pick(fields, "performanceinformation", "modelindex"), notes),
        "training_data": _training_data(*_pick(fields, "trainingdata", "datasets"), notes),
    }


_LABELS = {"trainingframework": "Training framework", "libraryname": "library_name",
           "othertag": "Other tag", "tags": "tags", "opensourceprotocol": "Open-source protocol",
           "license": "license", "performanceinformation": "Performance information",
           "modelindex": "model-index", "trainingdata": "Training data", "datasets": "datasets",
           }  # fmt: skip


def _pick(fields: dict[str, Value], amphub: str, hugging_face: str) -> tuple[Value, str]:
    """Return the amphub field's value when it is set, else the Hugging Face key's."""
    key = amphub if fields.get(amphub) is not None else hugging_face
    return fields.get(key), _LABELS[key]


def _frameworks(value: Value, field: str, notes: _Notes) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [*value.split(",")]  # a new list: list[str] is not a list[Value]
    names = []
    for name in _texts(value, field, notes):
        canonical = canonical_framework(name)
        if canonical is None:
            notes.add(f"{field}: unknown value {_q(name)}, kept as written")
        names.append(canonical or name)
    return tuple(dict.fromkeys(names))


def _job_type(fields: dict[str, Value], notes: _Notes) -> tuple[str | None, str | None]:
    job = fields.get("jobtype")
    if job is None:
        tag = _text(fields.get("pipelinetag"), "pipeline_tag", notes)
        return _classify(None, tag, ("pipeline_tag", "pipeline_tag"), notes)
    labels = ("Job type → Type", "Job type → Algorithm")
    if isinstance(job, dict):
        parts = _keyed(job)
        kind = _text(parts.get("type"), labels[0], notes)
        return _classify(kind, _text(parts.get("algorithm"), labels[1], notes), labels, notes)
    name = _text(job, "Job type", notes)
    if name and canonical_algorithm(name)[1] is None and canonical_task_type(name):
        return _classify(name, None, labels, notes)
    return _classify(None, name, labels, notes)


def _classify(
    kind: str | None, algorithm: str | None, labels: tuple[str, str], notes: _Notes
) -> tuple[str | None, str | None]:
    task_type = kind and canonical_task_type(kind)
    if kind and not task_type:
        notes.add(f"{labels[0]}: unknown value {_q(kind)}, kept as written")
    if not algorithm:
        return task_type or kind, None
    inferred, canonical = canonical_algorithm(algorithm, task_type)
    if canonical is None:
        notes.add(f"{labels[1]}: unknown value {_q(algorithm)}, kept as written")
    elif task_type and inferred != task_type:
        notes.add(f"Job type: Algorithm {_q(canonical)} is not a {_q(task_type)} algorithm")
    return (task_type or kind or (inferred if canonical else None)), canonical or algorithm


_COUNT = re.compile(
    r"(\d{1,3}(?:[,_ ]\d{3})+|\d+)(\.\d+)?\s*(k|m|b|t|thousand|million|billion|trillion)?",
    re.IGNORECASE,
)
_SCALES = {"k": 3, "thousand": 3, "m": 6, "million": 6, "b": 9, "billion": 9, "t": 12,
           "trillion": 12}  # fmt: skip


def _parameters(value: Value, notes: _Notes) -> int | None:
    count = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str):
        count = _count_text(value.strip())
    if value is not None and (count is None or not 0 <= count < 2**63):  # SQLite's INTEGER
        shown = _q(value) if isinstance(value, str | int | float) else _kind(value)
        notes.add(f"Number of parameters: expected a whole number such as 1700000000 "
                  f"or '1.7B', got {shown}; ignored")  # fmt: skip
        return None
    return count


def _count_text(text: str) -> int | None:
    """Read '1,700,000,000', '1 700 000 000', '1.7B' or '125M' as a count."""
    match = _COUNT.fullmatch(text) if len(text) <= 40 else None
    if not match:
        return None
    digits, fraction, scale = match.groups()
    number = Decimal(re.sub(r"[,_ ]", "", digits) + (fraction or ""))
    number = number.scaleb(_SCALES[scale.lower()] if scale else 0)
    return int(number) if number == number.to_integral_value() else None


def _number(value: Value) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1e308 else math.inf
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value.strip().removesuffix("%"))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None  # JSON has no NaN or infinity


def _link(value: Value, field: str, notes: _Notes) -> str | None:
    link = _text(value, field, notes)
    # Links are made clickable: only web addresses, never javascript: or data: URLs.
    if link and not re.match(r"https?://\S+$", link, re.IGNORECASE):
        notes.add(f"{field}: {_q(link)} is not an http(s) address; ignored")
        return None
    return link


def _dataset(value: Value, field: str, notes: _Notes) -> Dataset | None:
    if isinstance(value, dict):
        parts = _keyed(value)
        name = _text(parts.get("name"), f"{field} → Name", notes)
        permission = _text(parts.get("permission"), f"{field} → Permission", notes)
        link = _link(parts.get("link"), f"{field} → Link", notes)
    else:
        name, permission, link = _text(value, field, notes), None, None
    if not name:
        notes.add(f"{field}: no dataset Name; ignored")
        return None
    return Dataset(name, permission, link)


def _entries(value: Value, field: str) -> list[tuple[str, Value]]:
    """Number a list's items for warnings; a single item counts as a list of one."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [(f"{field} (entry {i})", item) for i, item in enumerate(items, 1)]


def _performance(value: Value, field: str, notes: _Notes) -> tuple[Performance, ...]:
    if field == "model-index":  # the Hugging Face shape
        return _model_index(value, notes)
    found = []
    for label, entry in _entries(value, field):
        if not isinstance(entry, dict):
            notes.add(f"{label}: expected Dataset and Performance metric, got {_kind(entry)}")
            continue
        parts = _keyed(entry)
        dataset = _dataset(parts.get("dataset"), label, notes)
        metrics = parts.get("performancemetric", parts.get("performancemetrics"))
        if dataset:
            found.append(Performance(dataset, _metrics(metrics, label, notes)))
    return tuple(found)


def _metrics(value: Value, field: str, notes: _Notes) -> dict[str, float]:
    if isinstance(value, list):  # Hugging Face style: [{type|name, value}]
        pairs = [_metric_pair(item) for item in value]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        if value is not None:
            notes.add(f"{field}: metrics should be NAME: number, got {_kind(value)}; ignored")
        return {}
    metrics = {}
    for name, raw in pairs:
        number, label = _number(raw), _text(name, f"{field} metric name", notes)
        if not label:
            notes.add(f"{field}: a metric has no name; ignored")
        elif number is None:
            notes.add(f"{field}: metric {_q(label)} is not a number; ignored")
        else:
            metrics[label] = number
    return metrics


def _metric_pair(item: Value) -> tuple[Value, Value]:
    if not isinstance(item, dict):
        return None, item
    parts = _keyed(item)
    return parts.get("name") or parts.get("type"), parts.get("value")


def _model_index(value: Value, notes: _Notes) -> tuple[Performance, ...]:
    found = []
    for label, model in _entries(value, "model-index"):
        results = _keyed(model).get("results") if isinstance(model, dict) else None
        if not isinstance(results, list):
            notes.add(f"{label}: expected a mapping with a list of results; ignored")
            continue
        for i, result in enumerate(results, 1):
            where = f"{label} result {i}"
            parts = _keyed(result) if isinstance(result, dict) else {}
            dataset = parts.get("dataset")
            data = _keyed(dataset) if isinstance(dataset, dict) else {}
            name = _text(data.get("name") or data.get("type"), f"{where} dataset", notes)
            if not name:
                notes.add(f"{where}: no dataset name; ignored")
                continue
            metrics = _metrics(parts.get("metrics"), where, notes)
            found.append(Performance(Dataset(name, None, None), metrics))
    return tuple(found)


def _training_data(value: Value, field: str, notes: _Notes) -> tuple[Dataset, ...]:
    found = []
    for label, entry in _entries(value, field):
        if isinstance(entry, dict) and "dataset" in _keyed(entry):
            entry = _keyed(entry)["dataset"]
        dataset = _dataset(entry, label, notes)
        if dataset:
            found.append(dataset)
    return tuple(found)


# A line that opens a heading or a code fence (in which "#" lines are not headings). The rest
# of the line is taken whole and stripped after: a lazy `[^\n]*?` before `[ \t]*$` tries every
# split of a line of blanks, minutes for a README of one long line.
_BLOCK = re.compile(r"^ {0,3}(?:(#{1,6})(?:[ \t]([^\n]*))?|(`{3,}|~{3,})([^\n]*))$", re.MULTILINE)
_PERFORMANCE_WORDS = ("performance", "evaluation", "result", "benchmark", "评测", "性能", "评估")


def _split_body(body: str, cut: bool, notes: _Notes) -> tuple[str, str]:
    """Split the Markdown into description and performance sections, both trimmed."""
    if cut or len(body) > DESCRIPTION_LIMIT:
        body = body[:DESCRIPTION_LIMIT]
        notes.add(f"Description: longer than {DESCRIPTION_LIMIT // 1024 // 1024} MiB; cut")
    spans, fence, level, start = [], "", 0, 0
    for match in _BLOCK.finditer(body):
        hashes, title, marker, info = match.groups()
        info = (info or "").strip()
        if fence:
            if marker and marker[0] == fence[0] and len(marker) >= len(fence) and not info:
                fence = ""
        elif marker:
            fence = "" if marker[0] == "`" and "`" in info else marker
        else:
            if level and len(hashes) <= level:
                spans.append((start, match.start()))
                level = 0
            if not level and any(word in (title or "").casefold() for word in _PERFORMANCE_WORDS):
                level, start = len(hashes), match.start()
    if level:
        spans.append((start, len(body)))
    description, performance, at = [], [], 0
    for begin, end in spans:
        description.append(body[at:begin])
        performance.append(body[begin:end])
        at = end
    description.append(body[at:])
    return _trim("".join(description)), _trim("".join(performance))


_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\r?\n)+")


def _trim(text: str) -> str:
    return _LEADING_BLANK_LINES.sub("", text).rstrip(" \t\r\n")

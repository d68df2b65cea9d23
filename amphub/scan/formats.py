r"""Model formats other than pickles: headers checked, tensor bytes skipped, not read.

- safetensors: the header must be what the safetensors library itself accepts —
  a sane size, UTF-8 JSON starting with ``{``, every tensor's offsets inside the data
  and covering it exactly. A header the library would refuse is a parser-confusion
  attempt (or damage), so overlaps, holes and out-of-range offsets are suspicious;
  duplicate keys too, since JSON parsers disagree on which one wins.
- Keras: a ``Lambda`` layer carries marshalled Python bytecode that runs on load.
  ``.keras`` is a zip whose ``config.json`` is parsed, as are JSON files holding a
  Keras architecture (``model.to_json()``, Keras 2 and 3 ``config.json``); for
  ``.h5`` (no h5py here) the raw bytes of the file's head are searched for the
  config's ``class_name`` values, with JSON escapes decoded — and ASCII letters
  written as ``\u00XX`` (which ``json.dumps`` never does) are reported as obfuscation.
- GGUF: metadata keys are walked to find embedded chat templates (Jinja that some
  runtimes render), tensor infos and data are not read.
- ONNX: the protobuf wire format is walked (no onnx package) down to each tensor's
  ``external_data`` entries; an absolute ``location`` or one with ``..`` reads a file
  outside the model's directory when the model loads. ``raw_data`` is seeked over.
- NumPy ``.npy``: the header is a Python literal read with ``ast.literal_eval``
  (which builds literals only); an object dtype means a pickle follows.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from collections.abc import Iterator
from typing import Any

from amphub.scan import pickles
from amphub.scan.findings import Budget, Report, ScanError, Severity, Stream

_SAFETENSORS_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16,
    "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "F64": 64, "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
_H5_HEAD = 32 * 1024**2  # Keras writes model_config before the weights
_KERAS_CODE: dict[str, Severity] = {
    "Lambda": "dangerous",
    "__lambda__": "dangerous",
    "TFOpLambda": "suspicious",
}
_KERAS_MODULES = ("keras", "tensorflow", "tf_keras", "keras_nlp", "keras_hub", "keras_cv")
_JSON_STRING = rb'"((?:[^"\\]|\\.){0,256})"'
_H5_VALUES = re.compile(rb'"(class_name|module)"\s*:\s*' + _JSON_STRING)
_ESCAPED_ASCII = re.compile(rb"\\u00[2-7][0-9a-fA-F]")


class _Source:
    """Buffered reads and seeks over a binary file, for the header parsers."""

    def __init__(self, f: Stream, budget: Budget) -> None:
        self.f, self.budget = f, budget
        self.base = f.tell()
        self.buf, self.i = b"", 0

    def tell(self) -> int:
        return self.base + self.i

    def read(self, n: int) -> bytes:
        if self.i + n > len(self.buf):
            self.base += self.i
            self.buf, self.i = self.buf[self.i :], 0
            self.budget.check_time()
            while len(self.buf) < n and (data := self.f.read(max(n - len(self.buf), 65536))):
                self.buf += data
            if len(self.buf) < n:
                raise ScanError(f"truncated at byte {self.base + len(self.buf)}")
        self.i += n
        return self.buf[self.i - n : self.i]

    def skip(self, n: int) -> None:
        if n >= 1 << 48:  # no model file is this big: a corrupt length
            raise ScanError(f"length {n} at byte {self.tell()} runs past the file")
        if self.i + n <= len(self.buf):
            self.i += n
            return
        self.base += self.i + n
        self.buf, self.i = b"", 0
        self.f.seek(self.base)
        self.budget.check_time()

    def unpack(self, fmt: str) -> int:
        value: int = struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]
        return value

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.read(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
        raise ScanError("protobuf varint too long")


def scan_safetensors(f: Stream, size: int, report: Report, budget: Budget) -> None:
    """Check a safetensors header the way the safetensors library validates it.

    Raises:
        ScanError: The header cannot be read (size, UTF-8, JSON, structure).
    """
    head = f.read(8)
    if len(head) < 8:
        raise ScanError("safetensors file shorter than its 8-byte header size")
    n = struct.unpack("<Q", head)[0]
    if n > budget.limits.max_header_bytes or 8 + n > size:
        raise ScanError(f"safetensors header size {n} is larger than allowed or the file")
    try:
        text = f.read(n).decode("utf-8")
        if not text.startswith("{"):
            raise ValueError("does not start with '{'")
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_nan)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ScanError(f"safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ScanError("safetensors header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        report.add("format", "safetensors __metadata__ is not a map of strings", "suspicious")
    spans = sorted(_tensor_spans(header, report))
    data_len, end = size - 8 - n, 0
    for begin, stop, name in spans:
        if stop > data_len:
            report.add("format", f"safetensors tensor {name!r} ends past the file", "suspicious")
        if begin < end:
            report.add("format", f"safetensors tensor {name!r} overlaps another", "suspicious")
        elif begin > end:
            report.add("format", f"safetensors data has a hole before {name!r}", "suspicious")
        end = max(end, stop)
    if end < data_len:
        report.add("format", f"{data_len - end} bytes after the last tensor", "suspicious")
    report.add("format", f"safetensors: {len(spans)} tensors, header checked", "info")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _no_nan(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _tensor_spans(header: dict[str, Any], report: Report) -> Iterator[tuple[int, int, str]]:
    for name, info in header.items():
        ok = isinstance(info, dict) and isinstance(info.get("dtype"), str)
        offsets, shape = (info.get("data_offsets"), info.get("shape")) if ok else (None, None)
        if not (isinstance(offsets, list) and isinstance(shape, list)):
            raise ScanError(f"safetensors entry {name!r} lacks dtype, shape or data_offsets")
        if len(offsets) != 2 or not all(_count(x) for x in offsets + shape):
            raise ScanError(f"safetensors entry {name!r} has bad offsets or shape")
        begin, stop = offsets
        bits = _SAFETENSORS_BITS.get(info["dtype"])
        elements = 1
        for d in shape:
            elements *= d
        if bits is None:
            report.add("format", f"safetensors tensor {name!r}: unknown dtype", "suspicious")
        elif stop < begin or elements * bits != (stop - begin) * 8:
            message = f"safetensors tensor {name!r}: size and offsets disagree"
            report.add("format", message, "suspicious")
        yield begin, stop, name


def _count(x: object) -> bool:
    return type(x) is int and x >= 0


def scan_keras_config(data: bytes, report: Report) -> None:
    """Report code-carrying layers in a ``.keras`` archive's ``config.json``.

    Raises:
        ScanError: The config is not valid JSON.
    """
    try:
        config = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ScanError(f"Keras config.json is not valid JSON: {exc}") from None
    _walk_keras(config, report)


def scan_keras_json(data: bytes, report: Report) -> None:
    """Check a JSON file that holds a Keras architecture, like a ``.keras`` config.

    ``model.to_json()`` files and the ``config.json`` of Keras 2 and 3 models are
    rebuilt by ``model_from_json`` and ``load_model``: a ``Lambda`` layer or a module
    outside Keras runs code there too. Other JSON (and JSON that does not parse) is
    left to the text checks.
    """
    try:
        config = json.loads(data)
    except (ValueError, RecursionError):
        return
    if isinstance(config, dict) and "model_config" in config:  # Keras 2 HDF5-style dump
        config = config["model_config"]
    if (
        isinstance(config, dict)
        and isinstance(config.get("class_name"), str)
        and isinstance(config.get("config"), dict | list)
    ):
        _walk_keras(config, report)


def _walk_keras(config: object, report: Report) -> None:
    stack, seen = [config], 0
    while stack:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            cls, module = node.get("class_name"), node.get("module")
            if cls == "function" and isinstance(node.get("config"), str):
                cls = node["config"]  # Keras 3 resolves a function as module.config
            _keras_object(cls, module, report)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    report.add("format", f"Keras config checked ({seen} nodes)", "info")


def scan_hdf5(f: Stream, size: int, report: Report) -> None:
    """Search the head of a Keras HDF5 file for code-carrying layers (bounded read)."""
    data = f.read(min(size, _H5_HEAD))
    modules = set()
    for match in _H5_VALUES.finditer(data):
        try:
            value = json.loads(b'"' + match[2] + b'"')
        except ValueError:
            continue
        if match[1] == b"class_name":
            _keras_object(value, None, report)
        else:
            modules.add(value)
    for module in modules:
        _keras_object("", module, report)
    config = b"model_config" in data
    if config and _ESCAPED_ASCII.search(data):
        report.add("format", "Keras config writes ASCII letters as \\u escapes", "suspicious")
    if config or b"layer_names" in data:
        kind = "model config" if config else "weights only"
        report.add("format", f"Keras HDF5 ({kind}) checked", "info")
    elif size > len(data):
        report.add("format", f"no Keras config in the first {len(data)} bytes", "suspicious")
    else:
        report.add("format", "HDF5 file without a Keras model config", "info")


def _keras_object(cls: object, module: object, report: Report) -> None:
    if isinstance(cls, str) and cls in _KERAS_CODE:
        report.add("format", f"Keras {cls} layer runs Python code on load", _KERAS_CODE[cls])
    if isinstance(module, str) and module and not module.startswith(_KERAS_MODULES):
        name = cls if isinstance(cls, str) else ""
        safety = pickles.judge(module, name)
        severity: Severity = "dangerous" if safety == "dangerous" else "suspicious"
        report.add("format", f"Keras config imports {module}.{name}".rstrip("."), severity)


def scan_gguf(f: Stream, report: Report, budget: Budget) -> list[tuple[str, str]]:
    """Walk GGUF metadata; return its chat templates as (key, template).

    Raises:
        ScanError: The header or metadata is truncated or implausible.
    """
    src = _Source(f, budget)
    if src.read(4) != b"GGUF":
        raise ScanError("not a GGUF file")
    version = src.unpack("<I")
    if version not in (1, 2, 3):
        raise ScanError(f"unknown GGUF version {version}")
    count = "<I" if version == 1 else "<Q"
    tensors, keys = src.unpack(count), src.unpack(count)
    if keys > 1_000_000 or tensors > 10_000_000:
        raise ScanError(f"implausible GGUF counts ({tensors} tensors, {keys} keys)")
    templates = []
    for _ in range(keys):
        key = _gguf_string(src, count, 65536).decode("utf-8", "replace")
        vtype = src.unpack("<I")
        if key.startswith("tokenizer.chat_template") and vtype == 8:
            template = _gguf_string(src, count, 16 * 1024**2)
            templates.append((key, template.decode("utf-8", "replace")))
        else:
            _gguf_skip(src, vtype, count, 0)
    report.add("format", f"GGUF v{version}: {tensors} tensors, {keys} metadata keys", "info")
    return templates


_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gguf_string(src: _Source, count: str, limit: int) -> bytes:
    n = src.unpack(count)
    if n > limit:
        raise ScanError(f"GGUF string of {n} bytes")
    return src.read(n)


def _gguf_skip(src: _Source, vtype: int, count: str, depth: int) -> None:
    if vtype in _GGUF_SIZES:
        src.skip(_GGUF_SIZES[vtype])
    elif vtype == 8:
        src.skip(src.unpack(count))
    elif vtype == 9 and depth < 4:
        etype, n = src.unpack("<I"), src.unpack(count)
        if etype in _GGUF_SIZES:
            src.skip(n * _GGUF_SIZES[etype])
            return
        for i in range(n):
            if i % 65536 == 0:
                src.budget.check_time()
            _gguf_skip(src, etype, count, depth + 1)
    else:
        raise ScanError(f"bad GGUF value type {vtype}")


# ONNX messages: {field number: message kind} for the fields that can hold tensors.
_ONNX = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "tensor": {13: "entry"},
    "sparse": {1: "tensor", 2: "tensor"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node"},
    "entry": {},
}
_ABSOLUTE = re.compile(r"^(?:[/\\]|[A-Za-z]:)|://")


def scan_onnx(f: Stream, size: int, report: Report, budget: Budget) -> None:
    """Walk an ONNX model's protobuf for external-data locations.

    Raises:
        ScanError: The protobuf is malformed or nested too deep.
    """
    src = _Source(f, budget)
    locations: list[str] = []
    _onnx_message(src, size, "model", 0, locations)
    for location in sorted(set(locations)):
        parts = re.split(r"[/\\]", location)
        if _ABSOLUTE.search(location) or ".." in parts:
            message = f"ONNX external data outside the model: {location!r}"
            report.add("format", message, "dangerous")
    kind = f"{len(set(locations))} external data files" if locations else "no external data"
    report.add("format", f"ONNX model: {kind}", "info")


def _onnx_message(
    src: _Source, end: int, kind: str, depth: int, out: list[str]
) -> dict[int, bytes]:
    if depth > 32:
        raise ScanError("ONNX protobuf nested too deep")
    strings: dict[int, bytes] = {}
    while src.tell() < end:
        key = src.varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            src.varint()
        elif wire in (1, 5):
            src.skip(8 if wire == 1 else 4)
        elif wire == 2:
            n = src.varint()
            stop = src.tell() + n
            if stop > end:
                raise ScanError(f"ONNX field {field} runs past its message")
            sub = _ONNX[kind].get(field)
            if sub:
                entry = _onnx_message(src, stop, sub, depth + 1, out)
                if sub == "entry" and entry.get(1) == b"location":
                    out.append(entry.get(2, b"").decode("utf-8", "replace"))
            elif kind == "entry" and n <= 4096:
                strings[field] = src.read(n)
            else:
                src.skip(n)  # raw_data and the rest: not read
        else:
            raise ScanError(f"ONNX protobuf wire type {wire} at byte {src.tell()}")
    if src.tell() != end:
        raise ScanError("ONNX message overruns its length")
    return strings


def npy_header(f: Stream) -> tuple[bool, int]:
    """Read a ``.npy`` header; return (object dtype, offset of the data).

    Raises:
        ScanError: The header is malformed.
    """
    head = f.read(10)
    if not head.startswith(b"\x93NUMPY") or len(head) < 10 or head[6] not in (1, 2, 3):
        raise ScanError("not a NumPy .npy header")
    if head[6] == 1:
        n, start = struct.unpack("<H", head[8:10])[0], 10
    else:
        n, start = struct.unpack("<I", head[8:10] + f.read(2))[0], 12
    if n > 65536:
        raise ScanError(f"NumPy header of {n} bytes")
    raw = f.read(n)
    try:
        header = ast.literal_eval(raw.decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ScanError(f"NumPy header does not parse: {exc}") from None
    if not isinstance(header, dict) or {"descr", "fortran_order", "shape"} - header.keys():
        raise ScanError("NumPy header lacks descr, fortran_order or shape")
    return _has_object(header["descr"]), start + n


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return re.fullmatch(r"[<>|=]?O\d*", descr) is not None
    if isinstance(descr, list):  # structured: [(name, dtype[, shape]), …]
        return any(isinstance(f, tuple) and len(f) > 1 and _has_object(f[1]) for f in descr)
    raise ScanError("NumPy header with an unknown descr")

"""Fuzzing the parsers the scanner owns: the pickle walker, safetensors, GGUF, ONNX, zip
and tar (plain and compressed). Opt-in: ``pytest -m fuzz`` (the default run leaves it
out, see ``addopts`` in pyproject.toml); about a minute in all.

Each input is scanned under small limits and must give a verdict — never an exception
out of ``scan_blob``, never an "internal scanner error", never longer than the time
limit allows, and never more memory than the read and decompression limits allow.
Inputs are valid files of each format with bytes flipped, inserted and cut (the seed
corpus is built below, small and in the code), and plain random bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import tarfile
import time
import tracemalloc
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import Budget, Limits
from amphub.scan.pickles import scan_pickles

pytestmark = pytest.mark.fuzz

LIMITS = Limits(
    max_read_bytes=8 * 1024**2,
    max_unpacked_bytes=16 * 1024**2,
    max_opcodes=20_000_000,
    max_stack=100_000,
    max_zip_entries=200,
    max_seconds=2.0,
    max_text_bytes=1024**2,
)
MEMORY_CAP = 96 * 1024**2  # the limits above, with room for Python's own objects
FUZZ = settings(
    max_examples=400,
    deadline=None,  # timed below against the scan's own limit, not Hypothesis' clock
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)


class Call:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _tar(members: dict[str, bytes], mode: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _gguf() -> bytes:
    def gstr(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = gstr("general.name") + struct.pack("<I", 8) + gstr("tiny")
    kv += gstr("tokenizer.chat_template") + struct.pack("<I", 8) + gstr("{{ messages[0] }}")
    kv += gstr("llama.block_count") + struct.pack("<I", 4) + struct.pack("<I", 2)
    arr = gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + gstr("a") + gstr("b")
    return b"GGUF" + struct.pack("<IQQ", 3, 1, 4) + kv + arr


def _onnx() -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n])

    def field(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    entry = field(1, b"location") + field(2, b"weights.bin")
    tensor = field(8, b"w") + field(13, entry) + field(9, b"\0" * 16)
    return varint(1 << 3) + varint(8) + field(7, field(5, tensor) + field(1, field(5, b"")))


def _safetensors() -> bytes:
    header = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(8)


PICKLES = [
    pickle.dumps({"a": [1, 2.5, "x", b"y"], "b": (None, True)}, protocol=p) for p in range(6)
] + [pickle.dumps(Call(os.system, "id"), protocol=p) for p in (0, 2, 4)]
SEEDS = {
    "model.pkl": PICKLES,
    "model.safetensors": [_safetensors()],
    "model.gguf": [_gguf()],
    "model.onnx": [_onnx()],
    "pytorch_model.bin": [
        _zip({"archive/data.pkl": PICKLES[2], "archive/data/0": bytes(64)}),
        _zip({"archive/data.pkl": PICKLES[4]}, zipfile.ZIP_DEFLATED),
    ],
    "model.tar.gz": [
        _tar({"model.pkl": PICKLES[4], "code/inference.py": b"import os\n"}, "w"),
        _tar({"model.pkl": PICKLES[7], "config.json": b"{}"}, "w:gz"),
        gzip.compress(PICKLES[5]),
    ],
}


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut", "big"]))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "cut":
            del data[at:]
        elif action == "big" and len(data) >= at + 8:  # a huge length or count
            data[at : at + 8] = struct.pack("<Q", draw(st.sampled_from([2**31, 2**63, 2**64 - 1])))
    return bytes(data)


def bounded(run) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        run()
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < LIMITS.max_seconds * 2 + 1, f"took {elapsed:.1f} s"
    assert peak < MEMORY_CAP, f"peak {peak / 1e6:.0f} MB"


def scan_bounded(data: bytes, path: str) -> None:
    verdict = None

    def run() -> None:
        nonlocal verdict
        verdict = scan_blob(path, lambda: io.BytesIO(data), len(data), limits=LIMITS)

    bounded(run)
    assert verdict is not None
    assert verdict.status in ("safe", "suspicious", "unsafe", "error", "skipped")
    assert "internal scanner error" not in [f.message for f in verdict.findings], verdict


@pytest.mark.parametrize("path", list(SEEDS))
@FUZZ
@given(data=st.data())
def test_mutated_files_give_a_verdict_within_the_limits(path, data):
    scan_bounded(data.draw(mutated(SEEDS[path])), path)


@FUZZ
@given(blob=st.binary(max_size=4096), path=st.sampled_from([*SEEDS, "notes.txt", "x.ipynb"]))
def test_random_bytes_give_a_verdict_within_the_limits(blob, path):
    scan_bounded(blob, path)


@FUZZ
@given(data=st.data())
def test_the_pickle_walker_returns_or_reports_why_it_stopped(data):
    blob = data.draw(mutated(PICKLES))

    def run() -> None:
        result = scan_pickles(io.BytesIO(blob), Budget(LIMITS))
        assert result.pickles > 0 or result.error is not None

    bounded(run)

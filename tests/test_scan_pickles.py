"""Pickle scanning: a corpus of harmful and harmless files generated here.

torch, numpy and joblib are not installed: their files are built by hand — fake
classes registered under their module names while pickling, and zips laid out the
way torch.save lays them out.
"""

from __future__ import annotations

import collections
import functools
import importlib
import io
import operator
import os
import pickle
import pickletools
import pkgutil
import random
import runpy
import socket
import struct
import sys
import types
import zipfile
import zlib
from pathlib import Path

import pytest

from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import Budget, FileVerdict, Limits
from amphub.scan.pickles import compat_name, judge, scan_pickles


def scan(data: bytes, path: str = "model.pkl", limits: Limits | None = None) -> FileVerdict:
    kwargs = {"limits": limits} if limits else {}
    return scan_blob(path, lambda: io.BytesIO(data), len(data), **kwargs)


def imported(verdict: FileVerdict) -> dict[str, str]:
    return {f"{i.module}.{i.name}": i.safety for i in verdict.pickle_imports}


class Call:
    """Pickles as ``func(*args)``: the shape of every __reduce__ attack."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# A tiny assembler for pickles the pickler would never write.
def su(text: str) -> bytes:  # SHORT_BINUNICODE
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def g4(module: str, name: str) -> bytes:  # STACK_GLOBAL from two memoized strings
    return su(module) + b"\x94" + su(name) + b"\x94\x93"


P4, MEMO, TUP1, TUP2, REDUCE, STOP = b"\x80\x04", b"\x94", b"\x85", b"\x86", b"R", b"."


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


# --- fake torch -------------------------------------------------------------------


@pytest.fixture
def torch_pickle(monkeypatch: pytest.MonkeyPatch):
    """Return a function pickling a state dict the way torch.save does (protocol 2)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    storage_cls = type("FloatStorage", (), {"__module__": "torch", "__qualname__": "FloatStorage"})

    def _rebuild_tensor_v2(*args):  # never called: nothing is unpickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils = storage_cls, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Storage:
        def __init__(self, key: str, numel: int):
            self.key, self.numel = key, numel

    class Tensor:
        def __init__(self, key: str, numel: int):
            self.storage, self.numel = Storage(key, numel), numel

        def __reduce__(self):
            args = (self.storage, 0, (self.numel,), (1,), False, collections.OrderedDict())
            return _rebuild_tensor_v2, args

    class TorchPickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", storage_cls, obj.key, "cpu", obj.numel)
            return None

    def dump(extra: dict | None = None, protocol: int = 2) -> bytes:
        state = collections.OrderedDict(weight=Tensor("0", 4), bias=Tensor("1", 2))
        state.update(extra or {})
        out = io.BytesIO()
        TorchPickler(out, protocol=protocol).dump(state)
        return out.getvalue()

    return dump


def torch_zip(data_pkl: bytes, **extra: bytes) -> bytes:
    members = {"archive/data.pkl": data_pkl, "archive/byteorder": b"little"}
    members |= {"archive/data/0": struct.pack("<4f", 1.5, -2.0, 0.25, 3.0)}
    members |= {"archive/data/1": struct.pack("<2f", 0.5, 0.75), "archive/version": b"3\n"}
    members |= {"archive/.data/serialization_id": b"1234567890"}
    return zip_of(members | extra)


# --- harmless ---------------------------------------------------------------------


def test_torch_state_dict_zip_is_safe(torch_pickle):
    verdict = scan(torch_zip(torch_pickle()), "pytorch_model.bin")
    assert verdict.status == "safe", verdict
    assert imported(verdict) == {
        "collections.OrderedDict": "innocuous",
        "torch._utils._rebuild_tensor_v2": "innocuous",
        "torch.FloatStorage": "innocuous",
    }
    assert verdict.to_json()["pickleImportScan"]["status"] == "innocuous"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_raw_torch_pickle_is_safe(torch_pickle, protocol):
    assert scan(torch_pickle(protocol=protocol), "model.pt").status == "safe"


def test_legacy_torch_file_is_safe(torch_pickle):
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    parts = [magic, pickle.dumps(1001, protocol=2), pickle.dumps({"little_endian": True}, 2)]
    parts += [torch_pickle(), pickle.dumps(["0", "1"], protocol=2)]
    storages = struct.pack("<q4f", 4, 1, 2, 3, 4) + struct.pack("<q2f", 2, 5, 6)
    verdict = scan(b"".join(parts) + storages, "old.bin")
    assert verdict.status == "safe", verdict


@pytest.mark.parametrize("protocol", range(6))
def test_plain_data_is_safe(protocol):
    data = {"lr": 0.1, "steps": [1, 2, 3], "name": "run", "shape": (3, 4), "big": 2**70}
    assert scan(pickle.dumps(data, protocol=protocol)).status == "safe"


def test_state_dict_with_numpy_like_globals_is_safe():
    data = P4 + g4("numpy.core.multiarray", "_reconstruct") + g4("numpy", "ndarray")
    data += b"K\x00" + TUP1 + su("b") + b"\x87" + REDUCE + STOP
    assert scan(data).status == "safe"


# --- harmful: the __reduce__ tricks -------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
def test_os_system_in_every_protocol(protocol):
    verdict = scan(pickle.dumps(Call(os.system, "id"), protocol=protocol))
    assert verdict.status == "unsafe"
    assert imported(verdict) == {f"{os.system.__module__}.system": "dangerous"}
    assert any("system" in f.message and f.severity == "dangerous" for f in verdict.findings)


@pytest.mark.parametrize(
    ("payload", "global_name"),
    [
        (Call(exec, "import os"), "builtins.exec"),
        (Call(eval, "1"), "builtins.eval"),
        (Call(functools.partial, print, "x"), "functools.partial"),
        (operator.attrgetter("system"), "operator.attrgetter"),
        (operator.methodcaller("system", "id"), "operator.methodcaller"),
        (Call(pkgutil.resolve_name, "os:system"), "pkgutil.resolve_name"),
        (Call(importlib.import_module, "os"), "importlib.import_module"),
        (Call(runpy._run_code, "print(1)", {}), "runpy._run_code"),
        (Call(pickle.loads, b"N."), "_pickle.loads"),
        (Call(getattr, Call(__import__, "os"), "system"), "builtins.getattr"),
        (Call(socket.create_connection, ("example.com", 80)), "socket.create_connection"),
    ],
)
def test_reduce_tricks_are_unsafe(payload, global_name):
    verdict = scan(pickle.dumps(payload, protocol=4))
    assert verdict.status == "unsafe"
    assert imported(verdict)[global_name] == "dangerous"


def test_getattr_chain_by_hand():
    data = P4 + g4("builtins", "getattr") + g4("builtins", "__import__") + su("os") + TUP1
    data += REDUCE + su("system") + TUP2 + REDUCE + su("id") + TUP1 + REDUCE + STOP
    verdict = scan(data)
    assert verdict.status == "unsafe"
    assert set(imported(verdict)) == {"builtins.getattr", "builtins.__import__"}


@pytest.mark.parametrize(
    "data",
    [
        # strings memoized, popped, then fetched back for STACK_GLOBAL
        P4 + su("os") + MEMO + b"0" + su("system") + MEMO + b"0" + b"h\x00h\x01\x93" + STOP,
        # LONG_BINPUT / LONG_BINGET with gaps in the memo indices
        P4
        + su("os")
        + b"r\x07\x00\x00\x00"
        + b"0"
        + su("system")
        + b"r\x09\x00\x00\x00"
        + b"0"
        + b"j\x07\x00\x00\x00j\x09\x00\x00\x00\x93"
        + STOP,
        # protocol-0 text PUT/GET of a raw-unicode-escaped string
        b"\x80\x04Vo\\u0073\np5\n0g5\n" + su("system") + b"\x93" + STOP,
        # a mark pushed and popped between the operands; DUP of the name
        P4 + su("os") + b"(" + su("junk") + b"1" + su("system") + b"2" + b"0\x93" + STOP,
        # escaped STRING operands (decoded to str by the unpickler)
        b"\x80\x04S'\\x6fs'\nS'system'\n\x93" + STOP,
    ],
    ids=["memoize-binget", "long-binput-gaps", "text-put-get", "mark-dup", "escaped-string"],
)
def test_memo_and_stack_tricks(data):
    assert [op[0].name for op in pickletools.genops(data)][-2:] == ["STACK_GLOBAL", "STOP"]
    verdict = scan(data)
    assert verdict.status == "unsafe"
    assert imported(verdict) == {"os.system": "dangerous"}


def test_unresolvable_stack_global_is_suspicious():
    # the module name comes out of a call: the walker cannot know it
    data = P4 + g4("mylib", "name_of") + b")" + REDUCE + su("system") + b"\x93" + STOP
    verdict = scan(data)
    assert verdict.status == "suspicious"
    assert "<unresolved>.global" in imported(verdict)


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x02c__builtin__\neval\n(S'1+1'\ntR.",
        b"c__builtin__\neval\n(S'1+1'\ntR.",
        b"\x80\x02ccommands\ngetoutput\n(S'id'\ntR.",
        b"\x80\x03c__builtin__\nexec\n(S'1'\ntR.",  # no mapping from protocol 3 on
    ],
)
def test_python2_names_are_mapped_back(data):
    verdict = scan(data)
    assert verdict.status == "unsafe"
    assert set(imported(verdict)) & {"builtins.eval", "subprocess.getoutput", "__builtin__.exec"}


def test_dotted_name_through_allowed_module_is_dangerous():
    data = P4 + g4("torch", "serialization.os.system") + su("id") + TUP1 + REDUCE + STOP
    assert scan(data).status == "unsafe"
    assert judge("collections", "OrderedDict.__init__.__globals__") == "dangerous"


def test_extension_codes_are_suspicious():
    verdict = scan(b"\x80\x02\x82\x01)R.")
    assert verdict.status == "suspicious"
    assert "<extension>.1" in imported(verdict)


def test_second_concatenated_pickle_is_read():
    verdict = scan(pickle.dumps({"a": 1}) + pickle.dumps(Call(os.system, "id")))
    assert verdict.status == "unsafe"


def test_nested_pickle_is_reported():
    inner = pickle.dumps(Call(os.system, "id"))
    verdict = scan(pickle.dumps(Call(pickle.loads, inner), protocol=2))
    assert verdict.status == "unsafe"
    assert any("nested pickle" in f.message for f in verdict.findings)


def test_truncated_pickles_fail_closed():
    assert scan(pickle.dumps({"a": list(range(100))})[:-5]).status == "error"
    # os.system already ran when the unpickler hits the truncation
    assert scan(pickle.dumps([Call(os.system, "id"), list(range(50))])[:-5]).status == "unsafe"
    assert scan(b"\x80\x04\xff.").status == "error"  # unknown opcode
    assert scan(b"\x80\x04" + b"0.").status == "error"  # stack underflow
    assert scan(pickle.dumps(1) + b"garbage").status == "error"


def test_unknown_global_is_suspicious():
    assert scan(P4 + g4("sklearn.linear_model", "LogisticRegression") + STOP).status == (
        "suspicious"
    )


# --- containers -------------------------------------------------------------------


def test_pickle_under_odd_member_name_in_torch_zip(torch_pickle):
    evil = pickle.dumps(Call(os.system, "id"), protocol=2)
    verdict = scan(torch_zip(torch_pickle(), **{"archive/data/7": evil}), "model.pt")
    assert verdict.status == "unsafe"
    text_evil = b"cos\nsystem\n(S'id'\ntR."  # protocol 0: found by content too
    verdict = scan(torch_zip(torch_pickle(), **{"archive/extra": text_evil}), "model.pt")
    assert verdict.status == "unsafe"


def test_bin_that_is_really_a_zip(torch_pickle):
    evil = torch_pickle({"x": Call(os.system, "id")})
    verdict = scan(torch_zip(evil), "pytorch_model.bin")
    assert verdict.status == "unsafe"
    assert any("archive/data.pkl" in f.message for f in verdict.findings)


def test_compressed_zip_members_are_read():
    data = zip_of({"a/data.pkl": pickle.dumps(Call(os.system, "id"))}, zipfile.ZIP_DEFLATED)
    assert scan(data, "model.pt").status == "unsafe"


def test_zip_with_too_many_entries_is_not_safe():
    data = zip_of({f"f{i}": b"" for i in range(10_001)})
    verdict = scan(data, "model.pt")
    assert verdict.status == "error"
    assert any("entry limit" in f.message for f in verdict.findings)


def test_zip_bomb_member_hits_the_limit():
    bomb = pickle.dumps(b"\0" * (8 * 1024**2), protocol=4)  # BINBYTES8 of zeros
    data = zip_of({"archive/data.pkl": bomb}, zipfile.ZIP_DEFLATED)
    assert len(data) < 100_000
    verdict = scan(data, "model.pt", Limits(max_unpacked_bytes=1024**2))
    assert verdict.status == "error"
    assert any("decompression limit" in f.message for f in verdict.findings)


def test_overlapping_zip_entries_are_refused():
    one = zip_of({"a.pkl": pickle.dumps(1)})
    cd_at = one.index(b"PK\x01\x02")
    central = one[cd_at : one.index(b"PK\x05\x06")]
    twin = central.replace(b"a.pkl", b"b.pkl")
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, 2 * len(central), cd_at, 0)
    verdict = scan(one[:cd_at] + central + twin + end, "model.pt")
    assert verdict.status == "error"


def npy(descr: object, shape: tuple, data: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def test_npy_arrays():
    floats = npy("<f8", (3,), struct.pack("<3d", 1, 2, 3))
    assert scan(floats, "x.npy").status == "safe"
    evil = npy("|O", (1,), pickle.dumps([Call(os.system, "id")], protocol=3))
    assert scan(evil, "x.npy").status == "unsafe"
    assert scan(zip_of({"a.npy": floats, "b.npy": evil}), "x.npz").status == "unsafe"
    assert scan(zip_of({"a.npy": floats}, zipfile.ZIP_DEFLATED), "x.npz").status == "safe"
    structured = npy([("a", "<f8"), ("b", "|O")], (1,), pickle.dumps([Call(eval, "1")]))
    assert scan(structured, "y.npy").status == "unsafe"


# --- joblib -----------------------------------------------------------------------


@pytest.fixture
def joblib_dump(monkeypatch: pytest.MonkeyPatch):
    """Return a function writing objects the way joblib.dump does, arrays inline."""
    np_mod = types.ModuleType("numpy")
    jl_mod = types.ModuleType("joblib.numpy_pickle")

    class dtype:  # noqa: N801 - numpy's name; classes defined here get top-level qualnames
        def __init__(self, spec, elsize=-1, flags=0):
            self.spec, self.elsize, self.flags = spec, elsize, flags

        def __reduce__(self):
            state = (3, "<", None, None, None, self.elsize, -1, self.flags)
            return dtype, (self.spec, False, True), state

    class ndarray:
        pass

    class NumpyArrayWrapper:
        pass

    for cls, mod in ((dtype, np_mod), (ndarray, np_mod), (NumpyArrayWrapper, jl_mod)):
        cls.__module__, cls.__qualname__ = mod.__name__, cls.__name__
        setattr(mod, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "numpy", np_mod)
    monkeypatch.setitem(sys.modules, "joblib", types.ModuleType("joblib"))
    monkeypatch.setitem(sys.modules, "joblib.numpy_pickle", jl_mod)

    class Array:
        def __init__(self, data: bytes | list, spec: str = "f8"):
            self.data, self.spec = data, spec

    class NumpyPickler(pickle._Pickler):
        def save(self, obj, save_persistent_id=True):
            if not isinstance(obj, Array):
                return super().save(obj, save_persistent_id)
            wrapper = NumpyArrayWrapper()
            objects = isinstance(obj.data, list)
            count = len(obj.data) if objects else len(obj.data) // 8
            wrapper.__dict__.update(
                subclass=ndarray,
                shape=(count,),
                order="C",
                dtype=dtype("O8", flags=63) if objects else dtype(obj.spec),
                allow_mmap=not objects,
                numpy_array_alignment_bytes=16,
            )
            super().save(wrapper)
            self.framer.commit_frame(force=True)
            if objects:
                pickle.dump(obj.data, self.file_handle, protocol=2)
            else:
                padding = 16 - (self.file_handle.tell() + 1) % 16
                self.file_handle.write(bytes([padding]) + b"\xff" * padding + obj.data)

    def dump(value) -> bytes:
        out = io.BytesIO()
        pickler = NumpyPickler(out, protocol=4)
        pickler.file_handle = out
        pickler.dump(value)
        return out.getvalue()

    return dump, Array


def test_joblib_arrays_are_skipped(joblib_dump):
    dump, Array = joblib_dump
    data = dump({"coef": Array(struct.pack("<4d", 1, 2, 3, 4)), "n": 3})
    verdict = scan(data, "model.joblib")
    assert verdict.status == "safe", verdict
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in imported(verdict)


def test_joblib_harmful_after_an_array(joblib_dump):
    dump, Array = joblib_dump
    value = {"coef": Array(b"c" * 800), "evil": Call(os.system, "id")}  # c: GLOBAL
    assert scan(dump(value), "model.joblib").status == "unsafe"
    nested = {"objs": Array([Call(os.system, "id")]), "n": 1}
    assert scan(dump(nested), "model.pkl").status == "unsafe"


def test_compressed_joblib(joblib_dump):
    import gzip
    import zlib

    dump, _ = joblib_dump
    raw = dump({"evil": Call(os.system, "id")})
    assert scan(zlib.compress(raw), "model.joblib").status == "unsafe"
    assert scan(gzip.compress(raw), "model.pkl.gz").status == "unsafe"
    assert scan(zlib.compress(pickle.dumps({"a": 1})), "model.joblib").status == "safe"


# --- nothing runs -----------------------------------------------------------------


def test_scanning_runs_nothing_and_opens_no_socket(monkeypatch, tmp_path: Path, torch_pickle):
    def no_socket(*args, **kwargs):
        raise AssertionError("the scanner opened a socket")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    marker_file = tmp_path / "pwned"
    samples = [pickle.dumps(Call(os.system, f"touch {marker_file}"), protocol=p) for p in range(6)]
    samples.append(P4 + g4("amphub_scan_marker", "boom") + b")" + REDUCE + STOP)
    samples.append(torch_zip(torch_pickle({"x": Call(os.system, f"touch {marker_file}")})))
    before = set(sys.modules)
    for data in samples:
        assert scan(data).status in ("unsafe", "suspicious")
    assert not marker_file.exists()
    assert "amphub_scan_marker" not in sys.modules
    assert not {m for m in set(sys.modules) - before if not m.startswith("encodings.")}


# --- reads only what it needs -------------------------------------------------------


def sparse_zip(path: Path, members: list[tuple[str, bytes | int]]) -> None:
    """A stored zip; an int member is a hole of that size (tensor bytes never written)."""
    central = b""
    with path.open("wb") as f:
        for name, data in members:
            offset, raw = f.tell(), name.encode()
            size = data if isinstance(data, int) else len(data)
            crc = 0 if isinstance(data, int) else zlib.crc32(data)
            sizes = struct.pack("<3I2H", crc, size, size, len(raw), 0)
            f.write(struct.pack("<4s5H", b"PK\x03\x04", 20, 0, 0, 0, 0) + sizes + raw)
            if isinstance(data, int):
                f.seek(size, 1)
            else:
                f.write(data)
            central += struct.pack("<4s6H", b"PK\x01\x02", 20, 20, 0, 0, 0, 0) + sizes
            central += struct.pack("<3H2I", 0, 0, 0, 0, offset) + raw
        start = f.tell()
        f.write(central)
        n = len(members)
        f.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, n, n, len(central), start, 0))


class CountingFile:
    def __init__(self, path: Path):
        self.f, self.read_bytes = path.open("rb"), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.read_bytes += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_large_torch_zip_reads_only_kilobytes(tmp_path: Path, torch_pickle):
    path = tmp_path / "pytorch_model.bin"
    gib = 1024**3
    sparse_zip(path, [("archive/data.pkl", torch_pickle()), ("archive/data/0", gib // 2),
                      ("archive/data/1", gib // 2), ("archive/version", b"3\n")])  # fmt: skip
    opened: list[CountingFile] = []

    def open_blob():
        opened.append(CountingFile(path))
        return opened[-1]

    verdict = scan_blob("pytorch_model.bin", open_blob, path.stat().st_size)
    assert verdict.status == "safe", verdict
    assert path.stat().st_size > gib
    assert opened[0].read_bytes < 16 * 1024, opened[0].read_bytes


# --- the walker sees what the unpickler would import --------------------------------


class Inert:
    """What the recording unpickler hands out instead of any global: it does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Inert()

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def add(self, item):
        pass

    def __setitem__(self, key, value):
        pass


class RecordingUnpickler(pickle._Unpickler):
    """CPython's own unpickler, with find_class recording instead of importing."""

    def __init__(self, f, seen: set):
        super().__init__(f, encoding="latin1")
        self.seen = seen

    def find_class(self, module, name):
        self.seen.add(compat_name(module, name, self.proto))
        return Inert

    def persistent_load(self, pid):
        return Inert()


def globals_the_unpickler_imports(data: bytes) -> set:
    seen: set = set()
    f = io.BytesIO(data)
    while True:
        try:
            RecordingUnpickler(f, seen).load()
        except Exception:
            return seen
        if f.tell() == len(data):
            return seen


def test_walker_sees_every_global_the_unpickler_imports(torch_pickle):
    seeds = [pickle.dumps(Call(os.system, "id"), protocol=p) for p in range(6)]
    seeds += [
        pickle.dumps([Call(eval, "1"), {"a": Call(exec, "x")}], protocol=p) for p in (0, 2, 4)
    ]
    seeds += [torch_pickle(protocol=4), b"(cos\nsystem\nS'id'\no.", b"(S'id'\nios\nsystem\n."]
    seeds += [b"\x80\x04Vo\\u0073\np5\n0g5\n" + su("system") + b"\x93" + STOP]
    rng = random.Random(20240611)
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at, how = rng.randrange(len(data) or 1), rng.random()
            if how < 0.5 and data:
                data[at] = rng.randrange(256)
            elif how < 0.7:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 4))
        data = bytes(data)
        found = set(scan_pickles(io.BytesIO(data), Budget(Limits())).imports)
        assert globals_the_unpickler_imports(data) <= found, data

"""Which globals a pickle imports — read from its opcodes, never by unpickling it.

A pickle runs code by importing a callable (GLOBAL, STACK_GLOBAL, INST) and calling
it (REDUCE, OBJ, INST, NEWOBJ, BUILD through ``__setstate__``). So the globals are
what is judged: dangerous (on the deny-list) → unsafe, on the allow-list of what
model files really use → innocuous, anything else → suspicious.

Rules, with the reason next to each (several are picklescan bypasses):

- The walker interprets the stack and memo, because STACK_GLOBAL takes its module
  and name from the stack: strings pushed, memoized and fetched again (BINGET) must be
  followed. Operands it cannot resolve make an ``<unresolved>`` global, suspicious.
- Module names are mapped back the way the unpickler does for protocols below 3
  (``_compat_pickle``): ``__builtin__.eval`` is ``builtins.eval``.
- Names with dots are attribute paths in protocol 4 (``torch`` + ``serialization.os
  .system``); a path through a dunder or a denied name is dangerous.
- The unpickler executes opcodes as it reads them, so a pickle that is malformed after
  ``os.system`` has already run it: globals seen before a parse error still count.
- ``pickle.load`` called again reads the next pickle in a file, so every pickle in the
  file is read, not just the first — except the storage bytes after a legacy torch
  file's fifth pickle, which torch reads raw.
- joblib writes numpy arrays' bytes between pickle opcodes, after the BUILD of a
  ``NumpyArrayWrapper``; the walker then restarts that pickle tracking values, to
  skip exactly the array bytes (or to walk the nested pickle of an object array).
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from amphub.scan.findings import Budget, LimitReached, Safety, ScanError, Stream
from amphub.scan.opcodes import NONE, Global, Malformed, Retrack, Walker, text_value

log = logging.getLogger(__name__)

# A legacy (pre-zip) torch file starts with a pickle of this magic number.
_LEGACY_TORCH = re.compile(
    rb"\x80[\x02-\x05](?:\x95.{8})?\x8a\x0a"
    + re.escape((0x1950A86A20F9469CFC6C).to_bytes(10, "little"))
    + rb"\.",
    re.DOTALL,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _pairs(text: str) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for line in text.strip().splitlines():
        module, names = line.split(":")
        out.update((module.strip(), n) for n in names.split())
    return frozenset(out)


_STORAGES = (
    "Double Float Half BFloat16 Long Int Short Char Byte Bool ComplexDouble ComplexFloat"
    " QUInt8 QInt8 QInt32 QUInt4x2 QUInt2x4 Untyped"
)
_TORCH_DTYPES = (
    "float32 float float64 double float16 half bfloat16 complex32 complex64 complex128"
    " cfloat cdouble chalf uint8 uint16 uint32 uint64 int8 int16 short int32 int int64"
    " long bool qint8 quint8 qint32 quint4x2 quint2x4 float8_e4m3fn float8_e5m2"
    " float8_e4m3fnuz float8_e5m2fnuz float8_e8m0fnu"
)
ALLOWED = _pairs(
    f"""
    collections: OrderedDict defaultdict Counter deque
    builtins: set frozenset dict list tuple bytearray bytes complex slice range int float bool str
    copyreg: _reconstructor __newobj__ __newobj_ex__
    _codecs: encode
    argparse: Namespace
    pathlib: PosixPath WindowsPath PurePosixPath PureWindowsPath
    torch: {" ".join(s + "Storage" for s in _STORAGES.split())} {_TORCH_DTYPES}
    torch: {" ".join(s + "Tensor" for s in _STORAGES.split() if s != "Untyped")}
    torch: Size device Tensor strided sparse_coo sparse_csr sparse_csc sparse_bsr sparse_bsc
    torch: contiguous_format channels_last channels_last_3d preserve_format
    torch: per_tensor_affine per_channel_affine per_tensor_symmetric per_channel_symmetric
    torch._utils: _rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter
    torch._utils: _rebuild_parameter_with_state _rebuild_sparse_tensor _rebuild_qtensor
    torch._utils: _rebuild_nested_tensor _rebuild_meta_tensor_no_storage
    torch._utils: _rebuild_wrapper_subclass _rebuild_device_tensor_from_numpy
    torch._tensor: _rebuild_from_type_v2
    torch.nn.parameter: Parameter Buffer
    torch.serialization: _get_layout
    torch.storage: UntypedStorage TypedStorage
    torch.torch_version: TorchVersion
    numpy: ndarray dtype
    numpy.core.multiarray: _reconstruct scalar
    numpy._core.multiarray: _reconstruct scalar
    numpy.core.numeric: _frombuffer
    numpy._core.numeric: _frombuffer
    joblib.numpy_pickle: NumpyArrayWrapper
    sklearn.externals.joblib.numpy_pickle: NumpyArrayWrapper
    """
)
# Any global from these modules (or their submodules) runs code, opens files or
# sockets, or loads a nested pickle. Beyond the obvious ones, each of pdb, timeit,
# profile, cProfile, bdb, trace, doctest, pydoc, code, idlelib, _osx_support,
# _aix_support, _pyrepl, imaplib, ensurepip, venv and numpy.testing has a function
# that executes a string or a command — they were used to bypass picklescan.
DENIED_MODULES = _words(
    """
    os nt posix posixpath ntpath subprocess _posixsubprocess pty sys shutil socket _socket
    ssl select selectors webbrowser runpy code codeop compileall py_compile pkgutil importlib
    _imp imp zipimport _frozen_importlib _frozen_importlib_external functools _functools
    operator _operator ctypes _ctypes cffi marshal types pickle _pickle cPickle dill
    cloudpickle shelve dbm pdb bdb timeit profile cProfile trace doctest pydoc idlelib
    lib2to3 unittest test distutils setuptools pip ensurepip venv site sysconfig platform
    _osx_support _aix_support _pyrepl asyncio multiprocessing concurrent threading _thread
    signal atexit gc inspect io _io fileinput tempfile glob urllib urllib2 http httplib
    requests aiohttp ftplib smtplib telnetlib poplib imaplib nntplib xmlrpc socketserver
    wsgiref logging numpy.testing numpy.f2py numpy.distutils torch.hub torch.package
    torch.utils.cpp_extension torch.utils.collect_env torch.utils.bottleneck
    torch._inductor torch._dynamo torch.jit torch.compiler commands
    """
)
_DENIED_BUILTINS = _words(
    "eval exec execfile compile open getattr setattr delattr __import__ globals locals vars"
    " input breakpoint help exit quit apply file reload __build_class__ __loader__"
)
DENIED_NAMES = _pairs(
    """
    torch: load from_file
    torch.serialization: load _load _legacy_load
    torch.storage: _load_from_bytes
    numpy: load fromfile
    numpy.lib.npyio: load
    joblib: load
    joblib.numpy_pickle: load
    pandas: read_pickle eval
    pandas.io.pickle: read_pickle
    copyreg: add_extension
    """
) | frozenset(("builtins", n) for n in _DENIED_BUILTINS)
# Attribute-path segments that reach code execution from an allowed module.
_DENIED_SEGMENTS = _DENIED_BUILTINS | _words(
    "os sys subprocess builtins posix nt pty shutil socket importlib runpy pickle _pickle"
    " marshal ctypes system popen spawn"
)
_NESTING = _words("pickle _pickle cPickle dill cloudpickle marshal")


def judge(module: str, name: str) -> Safety:
    """Judge a global the way the unpickler resolves it (after compat mapping).

    Args:
        module: The module name.
        name: The attribute name; dots make it a path (protocol 4 and later).

    Returns:
        "innocuous" if allow-listed, "dangerous" if denied, else "suspicious".
    """
    if (module, name) in ALLOWED:
        return "innocuous"
    mod = "builtins" if module in ("__builtin__", "__builtins__") else module
    parts = mod.split(".")
    if any(".".join(parts[:i]) in DENIED_MODULES for i in range(1, len(parts) + 1)):
        return "dangerous"
    segments = name.split(".")
    if (mod, segments[0]) in DENIED_NAMES:
        return "dangerous"
    if len(segments) > 1 and any(s.startswith("__") or s in _DENIED_SEGMENTS for s in segments):
        return "dangerous"
    return "suspicious"


def compat_name(module: str, name: str, proto: int) -> tuple[str, str]:
    """Map Python 2 names back as ``Unpickler.find_class`` does below protocol 3."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        if module in _compat_pickle.IMPORT_MAPPING:
            return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


@dataclass
class PickleScan:
    """What reading the pickles in a stream found."""

    pickles: int = 0  # complete pickles read
    imports: dict[tuple[str, str], Safety] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. nested pickles, legacy torch
    error: str | None = None  # why reading stopped early (parse error or limit)
    limit: bool = False

    @property
    def dangerous(self) -> bool:
        """Whether any global is dangerous."""
        return "dangerous" in self.imports.values()

    def add_global(self, module: str | None, name: str | None, proto: int) -> tuple[str, str]:
        """Record a global the walker met (None: operands it could not resolve).

        Returns:
            The global after compat mapping, as the unpickler would import it.
        """
        if module is None or name is None:
            key = ("<unresolved>", "global")
            self.imports.setdefault(key, "suspicious")
            return key
        key = compat_name(module, name, proto)
        if key not in self.imports:
            self.imports[key] = judge(*key)
            if key[0].split(".")[0] in _NESTING:
                self.notes.append(f"nested pickle or code object via {key[0]}.{key[1]}")
        return key


def scan_pickles(f: Stream, budget: Budget, *, depth: int = 0) -> PickleScan:
    """Read every pickle in ``f`` from its current position to its end.

    Args:
        f: A seekable binary file positioned at the first pickle.
        budget: The limits left for this blob (time; bytes are counted by ``f``).
        depth: How deep this stream is nested in containers.

    Returns:
        The imports found and, if the stream did not parse to its end, why.
    """
    result = PickleScan()
    walker = _JoblibWalker(f, budget, result, depth)
    with _reading(result, walker):
        legacy = _LEGACY_TORCH.match(walker.peek(32)) is not None
        while True:
            start = walker.tell()
            try:
                walker.walk_one(track=False)
            except Retrack:
                walker.seek(start)
                walker.walk_one(track=True)
            result.pickles += 1
            if not walker.peek(1):
                break
            if legacy and result.pickles == 5:
                result.notes.append("legacy torch file: storage bytes after the pickles skipped")
                break
    return result


# Bytes per element of torch's legacy storage classes (``torch.FloatStorage`` …).
_ELEMENT_SIZES = {"Double": 8, "Long": 8, "ComplexFloat": 8, "ComplexDouble": 16, "Float": 4}
_ELEMENT_SIZES |= {"Int": 4, "QInt32": 4, "Half": 2, "BFloat16": 2, "Short": 2}
_ELEMENT_SIZES |= {"Char": 1, "Byte": 1, "Bool": 1, "QUInt8": 1, "QInt8": 1, "QUInt4x2": 1}


def scan_legacy_torch_member(f: Stream, member: str, budget: Budget, depth: int) -> PickleScan:
    """Read the ``storages`` or ``tensors`` member of torch's oldest (tar) checkpoints.

    Each holds pickles, and after each storage's or tensor's pickle a raw record that
    torch reads itself: a storage's element count and bytes (the element size from the
    storage class the pickle names), or a tensor's dimensions, strides and offset.
    """
    result = PickleScan()
    sink = _LastGlobal(result)
    walker = Walker(f, budget, sink, depth)
    end = f.seek(0, 2)
    walker.seek(0)
    with _reading(result, walker):
        while walker.peek(1):
            sink.last = None
            walker.walk_one(track=False)
            result.pickles += 1
            if sink.last is not None and sink.last[0] == "torch":
                at = walker.tell()
                walker.seek(at + _legacy_record(f, at, member, sink.last[1]))
                if walker.tell() > end:
                    raise Malformed(f"legacy torch {member} record runs past the member")
    return result


def _legacy_record(f: Stream, at: int, member: str, name: str) -> int:
    f.seek(at)
    if member == "storages" and name.removesuffix("Storage") in _ELEMENT_SIZES:
        raw = f.read(8)
        count = int.from_bytes(raw, "little", signed=True) if len(raw) == 8 else -1
        if count < 0:
            raise Malformed("legacy torch storage without a size")
        return 8 + count * _ELEMENT_SIZES[name.removesuffix("Storage")]
    if member == "tensors" and name.endswith("Tensor"):
        raw = f.read(4)
        ndim = int.from_bytes(raw, "little", signed=True) if len(raw) == 4 else -1
        if not 0 <= ndim <= 64:
            raise Malformed("legacy torch tensor record without its dimensions")
        return 8 + 16 * ndim + 8
    return 0


class _LastGlobal:
    """Records globals in a scan and remembers the last one met."""

    def __init__(self, scan: PickleScan) -> None:
        self.scan = scan
        self.last: tuple[str, str] | None = None

    def add_global(self, module: str | None, name: str | None, proto: int) -> tuple[str, str]:
        self.last = self.scan.add_global(module, name, proto)
        return self.last


@contextlib.contextmanager
def _reading(result: PickleScan, walker: Walker) -> Iterator[None]:
    """Turn why reading stopped into the scan's error, keeping what was found."""
    try:
        yield
    except LimitReached as exc:
        result.error, result.limit = str(exc), True
    except Malformed as exc:
        result.error = f"malformed pickle at byte {walker.tell()}: {exc}"
    except ScanError as exc:
        result.error = str(exc)
    except Exception as exc:  # a failing decompressor or zip member: keep what was found
        log.debug("reading a pickle failed", exc_info=True)
        result.error = f"could not read the pickle: {exc!r}"


_JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)


class _Dtype:
    __slots__ = ("spec", "state")

    def __init__(self, spec: object) -> None:
        self.spec: object = spec
        self.state: object = None


class _Wrapper:
    __slots__ = ()


class _JoblibWalker(Walker):
    """A walker that steps over the array bytes joblib writes between opcodes.

    joblib's unpickler reads an array's bytes straight from the file after the BUILD
    of a ``NumpyArrayWrapper``: their size comes from the wrapper's state (shape and
    dtype), so the pickle holding one is read again tracking values.
    """

    nested = False  # inside an object array's pickle, a plain unpickler runs

    def wants_tracking(self, key: tuple[str, str]) -> bool:
        return key in _JOBLIB_WRAPPERS and not self.nested

    def call(self, func: object, args: object) -> object:
        if type(func) is not Global or type(args) is not tuple:
            return None
        key = (func.module, func.name)
        if key in _JOBLIB_WRAPPERS:
            return _Wrapper()
        if key == ("numpy", "dtype") and args:
            return _Dtype(args[0])
        if key == ("copyreg", "_reconstructor") and args and type(args[0]) is Global:
            return self.call(args[0], ())  # protocols 0 and 1 build objects this way
        return None

    def build(self, inst: object, state: object, pos: int) -> tuple[object, int]:
        if type(inst) is _Dtype:
            inst.state = state
        if type(inst) is not _Wrapper or self.nested:
            return inst, pos
        nbytes, hasobject, padded = _array_layout(state)
        if hasobject:  # pickled inline, for a fresh unpickler
            if self.depth >= self.budget.limits.max_depth:
                raise LimitReached("nesting limit reached (pickle in a joblib file)")
            self.pos, self.nested = pos, True
            try:
                self.walk_one(track=False)
            finally:
                self.nested = False
            return None, self.pos
        if padded:  # one byte gives the length of the alignment padding
            if pos >= len(self.buf):
                self._fill(pos, 1)
                pos = 0
            if pos >= len(self.buf):
                raise Malformed("truncated joblib array")
            nbytes += 1 + self.buf[pos]
        return None, self._skip(pos, nbytes)[1]  # None: joblib swaps in the array


def _array_layout(state: object) -> tuple[int, bool, bool]:
    """(bytes, has objects, padded) of a joblib array, from its wrapper's state."""
    if type(state) is not dict:
        raise Malformed("joblib array wrapper without a state dict")
    shape, dtype = state.get(b"shape"), state.get(b"dtype")
    align = state.get(b"numpy_array_alignment_bytes", NONE)
    if type(shape) is not tuple or not all(type(d) is int and d >= 0 for d in shape):
        raise Malformed("joblib array with an unknown shape")
    dstate = dtype.state if type(dtype) is _Dtype else None
    spec = text_value(dtype.spec) if type(dtype) is _Dtype else None
    if type(dstate) is not tuple or len(dstate) < 8 or spec is None or align is None:
        raise Malformed("joblib array with an unknown dtype")
    elsize, flags = dstate[5], dstate[7]  # numpy's dtype state: (3, '<', …, elsize, align, flags)
    if type(elsize) is not int or type(flags) is not int:
        raise Malformed("joblib array with an unknown dtype")
    hasobject = bool(flags & 1) or spec.startswith("O")
    if elsize <= 0:
        digits = re.fullmatch(r"[a-zA-Z?]+(\d+)", spec)
        if digits is None and not hasobject:
            raise Malformed(f"joblib array with dtype {spec!r}")
        elsize = int(digits[1]) if digits else 8
    count = 1
    for d in shape:
        count *= d
    return count * elsize, hasobject, align is not NONE

"""The pickle opcode walker: a small stack machine that never builds objects.

It follows exactly what deciding on globals needs: strings (STACK_GLOBAL takes its
module and name from the stack, possibly through the memo), marks, and — in
tracking mode, for joblib files only — small ints, tuples and dicts. Everything else
is ``None`` (unknown). Parse errors follow CPython's unpickler where it fails too
(stack underflow, unknown opcode, truncation); where a value merely does not parse
(``I010``), the walker is permissive: seeing more than the unpickler never hides a
global.
"""

from __future__ import annotations

import codecs
import struct
import warnings
from collections.abc import Callable
from typing import Protocol

from amphub.scan.findings import Budget, LimitReached, ScanError, Stream

_MAX_NAME = 1024  # longer strings can't be module names we'd allow; kept as unknown
_MAX_MEMO = 250_000  # memoized strings kept; later ones become unknown (fail closed)
_MAX_TRACKED = 64  # tuple/dict sizes followed in joblib tracking mode
_MAX_CHUNK = 256 * 1024
_MARGIN = 16  # longest fixed-size opcode (FRAME, BINFLOAT) fits with room to spare
_I32 = struct.Struct("<i").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from


class Retrack(Exception):
    """A joblib array wrapper was seen: read this pickle again, tracking values."""


class Malformed(ScanError):
    """The pickle is malformed or truncated."""


class Global:
    """A global on the stack (module and name after compat mapping)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


NONE = object()  # a real None while tracking; plain None on the stack means unknown


def text_value(item: object) -> str | None:
    """The str a stack item stands for, or None if it is not a string."""
    if type(item) is bytes:  # BINUNICODE family: decoded lazily, as the unpickler would
        try:
            return item.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
    return item if type(item) is str else None


class GlobalSink(Protocol):
    """Where the walker reports each global it meets; it judges them (``pickles``)."""

    def add_global(self, module: str | None, name: str | None, proto: int) -> tuple[str, str]:
        """Record a global (None: operands the walker could not resolve).

        Returns:
            The global after compat mapping, as the unpickler would import it.
        """
        ...


class Walker:
    """Reads the pickles of one stream; its loop is the hot path of the scanner."""

    def __init__(self, f: Stream, budget: Budget, sink: GlobalSink, depth: int) -> None:
        self.f, self.budget, self.sink, self.depth = f, budget, sink, depth
        self.buf, self.pos = b"", 0
        self.base = f.tell()  # file offset of buf[0]
        self.chunk = 4096  # small first read: sniffing a tensor member stays cheap
        self.walked = 0  # bytes walked: a bound on opcodes, each at least one byte

    def tell(self) -> int:
        """The file offset of the next opcode."""
        return self.base + self.pos

    def seek(self, offset: int) -> None:
        """Continue reading at ``offset``."""
        self.f.seek(offset)
        self.base, self.buf, self.pos = offset, b"", 0

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end), without consuming them."""
        if self.pos + n > len(self.buf):
            self._fill(self.pos, n)
        return self.buf[self.pos : self.pos + n]

    def _fill(self, pos: int, need: int) -> bytes:
        """Drop the consumed bytes and read until ``need`` bytes follow (or EOF)."""
        if pos > len(self.buf):  # an argument ran past the buffer: continue after it
            self.f.seek(self.base + pos)
            buf = b""
        else:
            buf = self.buf[pos:]
        self.base += pos
        self.walked += pos
        while len(buf) < need:
            data = self.f.read(max(need - len(buf), self.chunk))
            self.chunk = min(self.chunk * 4, _MAX_CHUNK)
            if not data:
                break
            buf += data
        self.buf, self.pos = buf, 0
        self.budget.check_time()
        if self.walked > self.budget.limits.max_opcodes:
            raise LimitReached(f"opcode limit of {self.budget.limits.max_opcodes} reached")
        return buf

    def _skip(self, pos: int, n: int) -> tuple[bytes, int]:
        """Step over ``n`` bytes without reading them when they are not buffered."""
        if pos + n <= len(self.buf):
            return self.buf, pos + n
        self.walked += pos
        self.seek(self.base + pos + n)  # past the end is found by the next read
        self.budget.check_time()
        return self.buf, 0

    def _arg(self, pos: int, hdr: int, n: int) -> tuple[bytes | None, bytes, int]:
        """The ``n`` bytes after an opcode and its ``hdr``-byte header at ``pos``."""
        end = pos + hdr + n
        if end <= len(self.buf):
            return (self.buf[pos + hdr : end] if n <= _MAX_NAME else None), self.buf, end
        if n > _MAX_NAME:  # tensor bytes and long strings are stepped over, not read
            buf, pos = self._skip(pos, hdr + n)
            return None, buf, pos
        buf = self._fill(pos, hdr + n)
        if len(buf) < hdr + n:
            raise Malformed("truncated")
        return buf[hdr : hdr + n], buf, hdr + n

    def _line(self, pos: int) -> tuple[bytes | None, bytes, int]:
        """The line at ``pos`` without its newline (None if too long to keep)."""
        buf, start, kept = self.buf, pos, True
        while (i := buf.find(b"\n", start)) < 0:
            if len(buf) - pos > _MAX_NAME:
                kept, pos = False, len(buf)  # only its end is needed now
            have = len(buf) - pos
            buf = self._fill(pos, have + 1)
            pos, start = 0, have
            if len(buf) == have:  # at EOF the unpickler takes the rest but its last byte
                return (buf[:-1] if kept else None), buf, len(buf)
        return (buf[pos:i] if kept and i - pos <= _MAX_NAME else None), buf, i + 1

    def _global(self, module: object, name: object, proto: int, track: bool) -> Global:
        key = self.sink.add_global(text_value(module), text_value(name), proto)
        if not track and self.wants_tracking(key):
            raise Retrack
        return Global(*key)

    # Hooks for a walker that knows what some calls make (joblib's, in pickles.py).
    def wants_tracking(self, key: tuple[str, str]) -> bool:
        """Whether meeting this global means the pickle must be read tracking values."""
        return False

    def call(self, func: object, args: object) -> object:
        """What calling ``func`` (REDUCE, NEWOBJ, OBJ, INST) makes, while tracking."""
        return None

    def build(self, inst: object, state: object, pos: int) -> tuple[object, int]:
        """Apply BUILD while tracking; return the new top of stack and position."""
        return inst, pos

    def walk_one(self, track: bool) -> None:  # noqa: C901 - one loop, by design
        """Read one pickle up to and including its STOP opcode.

        ``track`` follows small values (ints, tuples, dicts, dtypes) as well, which
        joblib's inline array bytes need.

        Raises:
            ScanError: The pickle is malformed or truncated, or a limit was reached.
        """
        buf, pos = self.buf, self.pos
        soft = len(buf) - _MARGIN
        stack: list[object] = []
        append = stack.append
        metastack: list[list[object]] = []
        memo: dict[int, object] = {}
        msize = 0  # memo keys 0..msize-1 are all present
        extra: set[int] = set()  # present keys above msize (PUT with gaps)
        proto = 0
        max_stack = self.budget.limits.max_stack
        try:
            while True:
                if pos > soft:
                    if len(stack) + len(metastack) > max_stack:
                        raise LimitReached(f"stack limit of {max_stack} reached")
                    buf, pos = self._fill(pos, _MARGIN), 0
                    soft = len(buf) - _MARGIN
                    if not buf:
                        raise Malformed("truncated: no STOP opcode")
                op = buf[pos]
                # Branches in rough order of frequency: this chain is the dispatch.
                if op == 0x94:  # MEMOIZE
                    if extra:
                        msize = _put(memo, msize, extra, msize + len(extra), stack[-1])
                    elif stack[-1] is not None and len(memo) < _MAX_MEMO:
                        memo[msize] = stack[-1]
                        msize += 1
                    else:
                        stack[-1]  # noqa: B018 - raises on underflow, as the unpickler does
                        msize += 1
                    pos += 1
                elif op == 0x8C:  # SHORT_BINUNICODE
                    end = pos + 2 + buf[pos + 1]
                    if end <= len(buf):
                        append(buf[pos + 2 : end])
                        pos = end
                    else:
                        raw, buf, pos = self._arg(pos, 2, buf[pos + 1])
                        soft = len(buf) - _MARGIN
                        append(raw)
                elif op == 0x68:  # BINGET
                    idx = buf[pos + 1]
                    append(memo[idx] if idx in memo else _absent(msize, extra, idx))
                    pos += 2
                elif op == 0x4B:  # BININT1
                    append(buf[pos + 1] if track else None)
                    pos += 2
                elif op == 0x28:  # MARK
                    metastack.append(stack)
                    stack = []
                    append = stack.append
                    pos += 1
                elif 0x85 <= op <= 0x87:  # TUPLE1, TUPLE2, TUPLE3
                    n = op - 0x84
                    stack[-n]  # noqa: B018 - raises on underflow
                    if track:
                        stack[-n:] = [tuple(stack[-n:])]
                    else:
                        del stack[len(stack) - n + 1 :]
                        stack[-1] = None
                    pos += 1
                elif op == 0x4A:  # BININT
                    append(_I32(buf, pos + 1)[0] if track else None)
                    pos += 5
                elif op in _EMPTY:  # EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_SET, NONE
                    append(_EMPTY[op]() if track else None)
                    pos += 1
                elif op == 0x65 or op == 0x75 or op == 0x90:  # APPENDS, SETITEMS, ADDITEMS
                    items = stack
                    stack = metastack.pop()
                    append = stack.append
                    target = stack[-1]
                    if op == 0x75 and len(items) % 2:
                        raise Malformed("odd number of items for SETITEMS")
                    if track and op == 0x75 and type(target) is dict:
                        for i in range(0, len(items), 2):
                            _setitem(target, items[i], items[i + 1])
                    pos += 1
                elif op == 0x47:  # BINFLOAT
                    append(None)
                    pos += 9
                elif op == 0x4D:  # BININT2
                    append(_U16(buf, pos + 1)[0] if track else None)
                    pos += 3
                elif op == 0x71:  # BINPUT
                    msize = _put(memo, msize, extra, buf[pos + 1], stack[-1])
                    pos += 2
                elif op == 0x73:  # SETITEM
                    value = stack.pop()
                    key = stack.pop()
                    if track and type(stack[-1]) is dict:
                        _setitem(stack[-1], key, value)
                    stack[-1]  # noqa: B018 - the dict must exist
                    pos += 1
                elif op == 0x61:  # APPEND
                    stack.pop()
                    stack[-1]  # noqa: B018 - the list must exist
                    pos += 1
                elif op == 0x52:  # REDUCE
                    args = stack.pop()
                    stack[-1] = self.call(stack[-1], args) if track else None
                    pos += 1
                elif op == 0x62:  # BUILD
                    state = stack.pop()
                    inst = stack[-1]
                    pos += 1
                    if track:
                        self.buf = buf
                        stack[-1], pos = self.build(inst, state, pos)
                        buf = self.buf
                        soft = len(buf) - _MARGIN
                elif op == 0x88 or op == 0x89:  # NEWTRUE, NEWFALSE
                    append((op == 0x88) if track else None)
                    pos += 1
                elif op == 0x6A or op == 0x72:  # LONG_BINGET, LONG_BINPUT
                    idx = _U32(buf, pos + 1)[0]
                    if op == 0x72:
                        msize = _put(memo, msize, extra, idx, stack[-1])
                    else:
                        append(memo[idx] if idx in memo else _absent(msize, extra, idx))
                    pos += 5
                elif op == 0x81 or op == 0x92:  # NEWOBJ, NEWOBJ_EX
                    if op == 0x92:
                        stack.pop()
                    args = stack.pop()
                    stack[-1] = self.call(stack[-1], args) if track else None
                    pos += 1
                elif op == 0x93:  # STACK_GLOBAL
                    name = stack.pop()
                    append(self._global(stack.pop(), name, proto, track))
                    pos += 1
                elif op == 0x51:  # BINPERSID: torch's storages; the pid is judged
                    stack[-1] = None
                    pos += 1
                elif op == 0x2E:  # STOP
                    stack.pop()
                    self.buf, self.pos = buf, pos + 1
                    return
                elif op == 0x95:  # FRAME: only a read-ahead hint; frames are contiguous
                    if _U64(buf, pos + 1)[0] >= 1 << 63:
                        raise Malformed("frame size too large")
                    pos += 9
                elif op == 0x80:  # PROTO
                    proto = buf[pos + 1]
                    if proto > 5:
                        raise Malformed(f"unsupported pickle protocol {proto}")
                    pos += 2
                elif op in _SIZED:  # BINUNICODE, BIN*STRING, BIN*BYTES, LONG1/4 …
                    hdr, unpack, kind = _SIZED[op]
                    n = buf[pos + 1] if unpack is None else unpack(buf, pos + 1)[0]
                    if n < 0 or n >= 1 << 63:
                        raise Malformed("bad length")
                    raw, buf, pos = self._arg(pos, hdr, n)
                    soft = len(buf) - _MARGIN
                    append(_sized_value(kind, raw, track))
                elif op in _MARKED:  # TUPLE, LIST, DICT, FROZENSET, POP_MARK, OBJ
                    items = stack
                    stack = metastack.pop()
                    append = stack.append
                    pos += 1
                    if op == 0x64 and len(items) % 2:
                        raise Malformed("odd number of items for DICT")
                    if op == 0x6F:  # OBJ: the class comes first
                        append(self.call(items[0], tuple(items[1:])) if track else None)
                    elif op != 0x31:  # not POP_MARK
                        append(_marked_value(op, items) if track else None)
                elif op == 0x63 or op == 0x69:  # GLOBAL, INST: module and name lines
                    module, buf, pos = self._line(pos + 1)
                    name, buf, pos = self._line(pos)
                    soft = len(buf) - _MARGIN
                    found: object = self._global(module, name, proto, track)
                    if op == 0x69:
                        stack_items = stack
                        stack = metastack.pop()
                        append = stack.append
                        found = self.call(found, tuple(stack_items)) if track else None
                    append(found)
                elif op == 0x30:  # POP: an empty stack pops the mark instead
                    if stack:
                        del stack[-1]
                    else:
                        stack = metastack.pop()
                        append = stack.append
                    pos += 1
                elif op == 0x32 or op == 0x98:  # DUP, READONLY_BUFFER
                    if op == 0x32:
                        append(stack[-1])
                    stack[-1]  # noqa: B018 - raises on underflow
                    pos += 1
                elif op in _LINES:  # INT, LONG, FLOAT, STRING, UNICODE, PUT, GET, PERSID
                    line, buf, pos = self._line(pos + 1)
                    soft = len(buf) - _MARGIN
                    if op == 0x70:  # PUT
                        msize = _put(memo, msize, extra, _memo_index(line), stack[-1])
                    elif op == 0x67:  # GET
                        idx = _memo_index(line)
                        append(memo[idx] if idx in memo else _absent(msize, extra, idx))
                    else:
                        append(_line_value(op, line, track))
                elif 0x82 <= op <= 0x84:  # EXT1, EXT2, EXT4: the extension registry
                    hdr, unpack = _EXT[op]
                    code = buf[pos + 1] if unpack is None else unpack(buf, pos + 1)[0]
                    if code <= 0:
                        raise Malformed("EXT code <= 0")
                    append(self._global("<extension>", str(code), 3, track))
                    pos += hdr
                elif op == 0x97:  # NEXT_BUFFER (protocol 5 out-of-band data)
                    append(None)
                    pos += 1
                else:
                    raise Malformed(f"unknown opcode 0x{op:02x}")
        except (IndexError, struct.error, Malformed) as exc:
            if buf is self.buf:  # else a helper moved on: its position is the better one
                self.pos = min(pos, len(buf))
            if isinstance(exc, Malformed):
                raise
            truncated = isinstance(exc, struct.error) or pos > soft  # soft: near EOF
            raise Malformed("truncated" if truncated else "stack underflow") from None


def _put(memo: dict[int, object], msize: int, extra: set[int], idx: int, item: object) -> int:
    """Store a memo entry; return the new count of contiguous keys."""
    if idx == msize:
        msize += 1
        while msize in extra:
            extra.discard(msize)
            msize += 1
    elif idx > msize:
        extra.add(idx)
    if item is not None and len(memo) < _MAX_MEMO:
        memo[idx] = item
    else:
        memo.pop(idx, None)
    return msize


def _absent(msize: int, extra: set[int], idx: int) -> object:
    """The stack item of a memo entry holding an unknown value (None); missing: an error."""
    if idx < msize or idx in extra:
        return None
    raise Malformed(f"memo value {idx} not found")


def _marked_value(op: int, items: list[object]) -> object:
    """TUPLE and DICT while tracking; LIST and FROZENSET stay unknown."""
    if op == 0x74 and len(items) <= _MAX_TRACKED:
        return tuple(items)
    if op == 0x64:
        target: dict[object, object] = {}
        for i in range(0, len(items), 2):
            _setitem(target, items[i], items[i + 1])
        return target
    return None


def _memo_index(line: bytes | None) -> int:
    if line is None:
        raise Malformed("memo index too long")
    try:
        idx = int(line)
    except ValueError:
        raise Malformed("bad memo index") from None
    if idx < 0:
        raise Malformed("negative memo index")
    return idx


def _line_value(op: int, line: bytes | None, track: bool) -> object:
    """The value of a protocol-0 text opcode; unparsable values become unknown."""
    if line is None:
        return None
    try:
        if op == 0x53:  # STRING: quoted, with escapes (S'\x6fs' is "os")
            if len(line) < 2 or line[0] != line[-1] or line[0] not in b"'\"":
                raise Malformed("the STRING opcode argument must be quoted")
            with warnings.catch_warnings(action="ignore"):  # invalid escapes warn
                return codecs.escape_decode(line[1:-1])[0].decode("latin-1")
        if op == 0x56:  # UNICODE
            return str(line, "raw-unicode-escape")
        if op == 0x50:  # PERSID
            line.decode("ascii")
            return None
        if not track:
            return None
        if op == 0x49:  # INT
            return line == b"01" if line in (b"00", b"01") else int(line, 0)
        if op == 0x4C:  # LONG
            return int(line[:-1] if line.endswith(b"L") else line, 0)
    except (ValueError, UnicodeDecodeError):
        if op == 0x50:
            raise Malformed("non-ASCII persistent id") from None
    return None


def _sized_value(kind: str, raw: bytes | None, track: bool) -> object:
    if raw is None or kind == "b":
        return None
    if kind == "u":
        return raw  # decoded when used as a global's name
    if kind == "s":
        return raw.decode("latin-1")
    return int.from_bytes(raw, "little", signed=True) if track else None


def _setitem(target: dict[object, object], key: object, value: object) -> None:
    if len(target) < _MAX_TRACKED and type(key) in (bytes, str, int):
        target[key.encode("utf-8", "surrogatepass") if type(key) is str else key] = value


_EMPTY: dict[int, Callable[[], object]] = {
    0x29: tuple,
    0x5D: lambda: None,
    0x7D: dict,
    0x8F: lambda: None,
    0x4E: lambda: NONE,
}
_SIZED = {  # opcode: (header bytes, length unpacker or None for one byte, value kind)
    0x58: (5, _U32, "u"),  # BINUNICODE
    0x8D: (9, _U64, "u"),  # BINUNICODE8
    0x54: (5, _I32, "s"),  # BINSTRING
    0x55: (2, None, "s"),  # SHORT_BINSTRING
    0x42: (5, _U32, "b"),  # BINBYTES
    0x43: (2, None, "b"),  # SHORT_BINBYTES
    0x8E: (9, _U64, "b"),  # BINBYTES8
    0x96: (9, _U64, "b"),  # BYTEARRAY8
    0x8A: (2, None, "l"),  # LONG1
    0x8B: (5, _I32, "l"),  # LONG4
}
_MARKED = frozenset({0x74, 0x6C, 0x64, 0x91, 0x31, 0x6F})
_LINES = frozenset({0x49, 0x4C, 0x46, 0x53, 0x56, 0x70, 0x67, 0x50})
_EXT = {0x82: (2, None), 0x83: (3, _U16), 0x84: (5, _I32)}

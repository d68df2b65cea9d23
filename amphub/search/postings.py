"""Sets of model slots for the search index: Python ints as bitmaps, and postings.

A set of models is an int with bit `slot` set for each model in it: `&`, `|` and
`bit_count()` then run in C over 64 slots a step. Turning one into a byte per slot (and
back) goes through radix-2 text, which CPython converts in linear time.
"""

from __future__ import annotations

import string
from collections import deque
from collections.abc import Iterable
from itertools import repeat

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_DIGITS_TO_FLAGS = bytes.maketrans(b"01", b"\x00\x01")
_FLAGS_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
# A value's set becomes a bitmap once it holds this share of the slots: below, a set of
# ints is smaller than a bitmap as wide as the index.
_DENSE_SHARE = 256
_DENSE_MIN = 64


def nocase(text: str) -> str:
    """SQLite's NOCASE collation key: ASCII letters folded, everything else as is."""
    return text.translate(_ASCII_FOLD)


def flags_of(bits: int, size: int) -> bytes:
    """One byte per slot, 1 where `bits` holds the slot (radix 2 conversions are linear)."""
    return format(bits, f"0{size}b").encode()[::-1].translate(_DIGITS_TO_FLAGS)


def bits_of(flags: bytes | bytearray) -> int:
    """The bitmap of a flag per slot."""
    return int(flags[::-1].translate(_FLAGS_TO_DIGITS), 2) if flags else 0


def scatter(flags: bytearray, slots: Iterable[int]) -> None:
    """Set the byte of each slot to 1, in one C loop (no Python step per slot)."""
    deque(map(flags.__setitem__, slots, repeat(1)), 0)


def bits_from(slots: Iterable[int], size: int) -> int:
    """The bitmap of some slots, each below `size`."""
    flags = bytearray(size)
    scatter(flags, slots)
    return bits_of(flags)


class Posting:
    """The slots of the models that hold one value of one field: a set, or a bitmap once dense."""

    __slots__ = ("value", "few", "bits")

    def __init__(self, value: str) -> None:
        self.value = value
        self.few: set[int] | None = set()
        self.bits = 0

    def __len__(self) -> int:
        return len(self.few) if self.few is not None else self.bits.bit_count()

    def add(self, slot: int, size: int) -> None:
        """Add a slot; `size` is how many slots the index has."""
        if self.few is None:
            self.bits |= 1 << slot
            return
        self.few.add(slot)
        if len(self.few) >= dense_from(size):
            self.densify(size)

    def densify(self, size: int) -> None:
        """Hold the slots as a bitmap from now on."""
        if self.few is not None:
            self.bits, self.few = bits_from(self.few, size), None

    def discard(self, slot: int) -> None:
        """Remove a slot."""
        if self.few is None:
            self.bits &= ~(1 << slot)
        else:
            self.few.discard(slot)

    def as_bits(self, size: int) -> int:
        """The slots as a bitmap."""
        return self.bits if self.few is None else bits_from(self.few, size)

    def count_in(self, hits: int, hit_flags: bytes) -> int:
        """How many of the slots are among the hits."""
        if self.few is None:
            return (self.bits & hits).bit_count()
        return sum(map(hit_flags.__getitem__, self.few))


def dense_from(size: int) -> int:
    """How many slots make a posting dense in an index of `size` slots."""
    return max(_DENSE_MIN, size // _DENSE_SHARE)


def union(postings: Iterable[Posting], size: int) -> int:
    """The bitmap of the slots of any of the postings."""
    bits = 0
    for posting in postings:
        bits |= posting.as_bits(size)
    return bits


class Field:
    """The postings of one field by value; for a NOCASE field, its spellings by folded value."""

    __slots__ = ("postings", "spellings")

    def __init__(self, folds: bool) -> None:
        self.postings: dict[str, Posting] = {}
        self.spellings: dict[str, set[str]] | None = {} if folds else None

    def posting(self, value: str) -> Posting:
        """The posting of a value, created empty when new."""
        posting = self.postings.get(value)
        if posting is None:
            posting = self.postings[value] = Posting(value)
            if self.spellings is not None:
                self.spellings.setdefault(nocase(value), set()).add(value)
        return posting

    def forget(self, value: str) -> None:
        """Drop a value no model holds any more (it leaves the facets too)."""
        del self.postings[value]
        if self.spellings is not None:
            spellings = self.spellings[nocase(value)]
            spellings.discard(value)
            if not spellings:
                del self.spellings[nocase(value)]

    def matching(self, value: str) -> list[Posting]:
        """The postings a filter on `value` selects: exact, or every spelling NOCASE-equal."""
        if self.spellings is None:
            posting = self.postings.get(value)
            return [posting] if posting is not None else []
        return [self.postings[v] for v in self.spellings.get(nocase(value), ())]

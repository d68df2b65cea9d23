"""The words of the models' descriptions: a sorted vocabulary and the slots holding each word.

A query word selects the models with a description word it begins (`is_prefix`; else the
word itself): a range of the sorted vocabulary, found by bisection, and the union of those
words' slots. A word's slots are an array of 4-byte ints in the order added, so the index
costs about 4 bytes per distinct word of each description, until a word is held by one
slot in 32: then a bitmap (an int) is smaller, and its union costs no Python step per slot.

A slot's words are not listed per slot (that list cost as much as the postings): a model
that changes or goes leaves its words behind in a stale slot. A stale slot is in no other
posting, so no search ever takes it for a match, and it is not given to another model
until a purge has taken it out of every word, once one slot in 16 is stale (`purge_due`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from itertools import filterfalse, repeat
from typing import NamedTuple, cast

from amphub.search.postings import bits_from, flags_of, scatter
from amphub.search.words import is_prefix

_LAST = chr(0x10FFFF)  # sorts after every character a word can continue with
# A word held by this share of the slots (or more) has a bitmap instead of an array.
_DENSE_SHARE = 32
_DENSE_MIN = 64
# A purge runs once this share of the slots (and at least `least`, see SearchIndex) is stale.
_PURGE_SHARE = 16


class Purged(NamedTuple):
    """What `Described.purged` made: the slots it took out, and the words without them."""

    stale: frozenset[int]
    slots: list[array[int] | int]
    words: list[str]
    ids: dict[str, int]
    free: list[int]
    vocabulary: list[str]


class Described:
    """Description words → slots, and which slots' words are in the postings."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.vocabulary: list[str] = []  # the words in use, sorted
        self.words: list[str] = []  # by id; "" for a free id
        self.slots: list[array[int] | int] = []  # by id: an array, or a bitmap once dense
        self.free: list[int] = []
        self.worded = bytearray()  # by slot: 1 while the slot's words are in the postings
        self.stale: set[int] = set()  # slots whose words are left behind
        self.sorted = True  # False while building in bulk: sorted once at the end

    def add(self, slot: int, words: Sequence[str], size: int | None) -> None:
        """Record the words of a slot's description (each distinct word once).

        `size` is how many slots the index has; None while building in bulk (arrays only).
        """
        known = list(map(self.ids.get, words))
        if None in known:
            known = [self._id(w) if i is None else i for w, i in zip(words, known, strict=True)]
        word_ids = cast(list[int], known)
        if not word_ids:
            return
        if slot >= len(self.worded):
            self.worded.extend(bytes(slot + 1 - len(self.worded)))
        self.worded[slot] = 1
        all_slots = self.slots
        if size is None:  # every word an array: append to each, all in C
            arrays = cast("list[array[int]]", all_slots)
            deque(map(array.append, map(arrays.__getitem__, word_ids), repeat(slot)), 0)
            return
        dense, bit = _dense_from(size), 1 << slot
        for word_id in word_ids:
            slots = all_slots[word_id]
            if isinstance(slots, int):
                all_slots[word_id] = slots | bit
            else:
                slots.append(slot)
                if len(slots) >= dense:
                    all_slots[word_id] = bits_from(slots, size)

    def retire(self, slot: int) -> bool:
        """Leave a slot's words behind; whether it had any (it is stale until a purge)."""
        if slot < len(self.worded) and self.worded[slot]:
            self.worded[slot] = 0
            self.stale.add(slot)
            return True
        return False

    def purge_due(self, size: int, least: int) -> bool:
        """Whether enough slots are stale (one in 16, at least `least`) to purge them now."""
        return len(self.stale) >= max(least, size // _PURGE_SHARE)

    def purged(self) -> Purged:
        """The words without the stale slots; reads only, so a worker thread may run it."""
        stale = frozenset(self.stale)
        keep = ~bits_from(stale, max(stale) + 1) if stale else -1
        dropped = stale.__contains__
        slots = [
            held & keep if isinstance(held, int) else array("i", filterfalse(dropped, held))
            for held in self.slots
        ]
        words, ids, free = list(self.words), dict(self.ids), list(self.free)
        for word_id, held in enumerate(slots):
            if not held and words[word_id]:  # a word no slot holds leaves
                del ids[words[word_id]]
                words[word_id] = ""
                free.append(word_id)
        vocabulary = list(filter(ids.__contains__, self.vocabulary))
        return Purged(stale, slots, words, ids, free, vocabulary)

    def adopt(self, purged: Purged) -> list[int]:
        """Take a purge made since the last change; the slots it frees."""
        self.slots, self.words, self.ids = purged.slots, purged.words, purged.ids
        self.free, self.vocabulary = purged.free, purged.vocabulary
        self.stale -= purged.stale
        return sorted(purged.stale)

    def finish(self, size: int) -> None:
        """Sort the vocabulary and make the dense words bitmaps, after adding in bulk."""
        self.vocabulary.sort()
        self.sorted = True
        dense = _dense_from(size)
        for word_id, slots in enumerate(self.slots):
            if not isinstance(slots, int) and len(slots) >= dense:
                self.slots[word_id] = bits_from(slots, size)

    def flags(self, word: str, size: int) -> bytearray:
        """One byte per slot, 1 where the description has a word `word` begins."""
        if is_prefix(word):
            low = bisect_left(self.vocabulary, word)
            matched = self.vocabulary[low : bisect_left(self.vocabulary, word + _LAST, low)]
        else:
            matched = [word] if word in self.ids else []
        bits, sparse = 0, []
        for found in matched:
            slots = self.slots[self.ids[found]]
            if isinstance(slots, int):
                bits |= slots
            else:
                sparse.append(slots)
        flags = bytearray(flags_of(bits, size)) if bits else bytearray(size)
        for slots in sparse:
            scatter(flags, slots)
        return flags

    def _id(self, word: str) -> int:
        """The id of a word, added to the vocabulary when new."""
        word_id = self.ids.get(word)
        if word_id is not None:
            return word_id
        if self.free:
            word_id = self.free.pop()
            self.words[word_id] = word
            self.slots[word_id] = array("i")
        else:
            word_id = len(self.words)
            self.words.append(word)
            self.slots.append(array("i"))
        self.ids[word] = word_id
        if self.sorted:
            insort(self.vocabulary, word)
        else:
            self.vocabulary.append(word)
        return word_id


def _dense_from(size: int) -> int:
    return max(_DENSE_MIN, size // _DENSE_SHARE)

"""The words of the models' descriptions: a sorted vocabulary and the slots holding each word.

A query word selects the models with a description word it begins (`PREFIX_FROM` letters
on; a shorter one, the word itself): a range of the sorted vocabulary, found by bisection,
and the union of those words' slots. A word's slots are an array of 4-byte ints in the
order added, so the index costs about 4 bytes per distinct word of each description, until
a word is held by one slot in 32: then a bitmap (an int) is smaller, and its union costs
no Python step per slot. Each slot keeps its word ids in an array too, to take them out.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Iterable

from amphub.search.postings import bits_from, flags_of
from amphub.search.words import PREFIX_FROM

_LAST = chr(0x10FFFF)  # sorts after every character a word can continue with
# A word held by this share of the slots (or more) has a bitmap instead of an array.
_DENSE_SHARE = 32
_DENSE_MIN = 64


class Described:
    """Description words → slots, and slot → word ids."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.vocabulary: list[str] = []  # the words in use, sorted
        self.words: list[str] = []  # by id; "" for a free id
        self.slots: list[array[int] | int] = []  # by id: an array, or a bitmap once dense
        self.free: list[int] = []
        self.of_slot: dict[int, array[int]] = {}
        self.sorted = True  # False while building in bulk: sorted once at the end

    def add(self, slot: int, words: Iterable[str], size: int | None) -> None:
        """Record the words of a slot's description (each distinct word once).

        `size` is how many slots the index has; None while building in bulk (arrays only).
        """
        held = array("i")
        all_slots, dense = self.slots, _dense_from(size) if size is not None else None
        for word in words:
            word_id = self.ids.get(word)
            if word_id is None:
                word_id = self._new(word)
            slots = all_slots[word_id]
            if isinstance(slots, int):
                all_slots[word_id] = slots | 1 << slot
            else:
                slots.append(slot)
                if dense is not None and len(slots) >= dense:
                    all_slots[word_id] = bits_from(slots, size or 0)
            held.append(word_id)
        if held:
            self.of_slot[slot] = held

    def remove(self, slot: int) -> None:
        """Forget a slot's words; a word no slot holds leaves the vocabulary."""
        all_slots = self.slots
        for word_id in self.of_slot.pop(slot, ()):
            slots = all_slots[word_id]
            if isinstance(slots, int):
                slots = all_slots[word_id] = slots & ~(1 << slot)
            else:
                slots.remove(slot)
            if not slots:
                word = self.words[word_id]
                del self.ids[word]
                del self.vocabulary[bisect_left(self.vocabulary, word)]
                self.words[word_id] = ""
                self.free.append(word_id)

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
        if len(word) < PREFIX_FROM:
            matched = [word] if word in self.ids else []
        else:
            low = bisect_left(self.vocabulary, word)
            matched = self.vocabulary[low : bisect_left(self.vocabulary, word + _LAST, low)]
        bits, sparse = 0, []
        for found in matched:
            slots = self.slots[self.ids[found]]
            if isinstance(slots, int):
                bits |= slots
            else:
                sparse.append(slots)
        flags = bytearray(flags_of(bits, size)) if bits else bytearray(size)
        for slots in sparse:
            for slot in slots:
                flags[slot] = 1
        return flags

    def _new(self, word: str) -> int:
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

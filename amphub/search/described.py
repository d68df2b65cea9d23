"""The words of the models' descriptions: a sorted vocabulary and the slots holding each word.

A query word selects the models with a description word it begins (`PREFIX_FROM` letters
on; a shorter one, the word itself): a range of the sorted vocabulary, found by bisection,
and the union of those words' slots. A word's slots are an array of 4-byte ints in the
order added, so the index costs about 4 bytes per distinct word of each description;
each slot keeps its word ids the same way, to take them out again.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Iterable

from amphub.search.words import PREFIX_FROM

_LAST = chr(0x10FFFF)  # sorts after every character a word can continue with


class Described:
    """Description words → slots, and slot → word ids."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.vocabulary: list[str] = []  # the words in use, sorted
        self.words: list[str] = []  # by id; "" for a free id
        self.slots: list[array[int]] = []  # by id
        self.free: list[int] = []
        self.of_slot: dict[int, array[int]] = {}
        self.sorted = True  # False while building in bulk: sorted once at the end

    def add(self, slot: int, words: Iterable[str]) -> None:
        """Record the words of a slot's description (each distinct word once)."""
        held = array("i")
        for word in words:
            word_id = self.ids.get(word)
            if word_id is None:
                word_id = self._new(word)
            self.slots[word_id].append(slot)
            held.append(word_id)
        if held:
            self.of_slot[slot] = held

    def remove(self, slot: int) -> None:
        """Forget a slot's words; a word no slot holds leaves the vocabulary."""
        for word_id in self.of_slot.pop(slot, ()):
            slots = self.slots[word_id]
            slots.remove(slot)
            if not slots:
                word = self.words[word_id]
                del self.ids[word]
                del self.vocabulary[bisect_left(self.vocabulary, word)]
                self.words[word_id] = ""
                self.free.append(word_id)

    def finish(self) -> None:
        """Sort the vocabulary after adding in bulk."""
        self.vocabulary.sort()
        self.sorted = True

    def flags(self, word: str, size: int) -> bytearray:
        """One byte per slot, 1 where the description has a word `word` begins."""
        flags = bytearray(size)
        if len(word) < PREFIX_FROM:
            matched = [word] if word in self.ids else []
        else:
            low = bisect_left(self.vocabulary, word)
            matched = self.vocabulary[low : bisect_left(self.vocabulary, word + _LAST, low)]
        for found in matched:
            for slot in self.slots[self.ids[found]]:
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

"""Words of a search: text folded for matching, and the words a query asks for.

Folding drops case and accents (``Ünïcode`` → ``unicode``) and applies Unicode's
compatibility forms (full-width letters); it runs once on the stored text and once on the
query. A model's search text holds its short fields (ids, name, card values), where each
query word is looked for as a substring, and then its description's words, which a query
word matches by being the beginning of one of them (`searchable`, `split`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[^\W_]+")
# Ends the short fields in a search text; the description's words follow, each after a space.
DESCRIPTION_MARK = "\x1f"
# A query word shorter than this matches a description word only whole: "en" would
# otherwise select nearly every model, and reading that many postings is slow.
PREFIX_FROM = 3


def fold(text: str) -> str:
    """The text as search compares it: compatibility form, no accents, no case."""
    decomposed = unicodedata.normalize("NFKD", text)
    if decomposed.isascii():
        return decomposed.lower()
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return bare.casefold()


def query_words(text: str) -> tuple[str, ...]:
    """The words a query asks for, folded; punctuation alone is one word as written."""
    folded = fold(text)
    return tuple(_WORD.findall(folded)) or ((folded.strip(),) if folded.strip() else ())


def searchable(fields: Iterable[str], description: str) -> str:
    """The search text of a model: its short fields folded, then its description's words.

    Each distinct word once, in the order it first appears: the fields, the mark, " w1 w2 ", so
    that SQL finds a word's beginning as `' ' || word` after the one mark.
    """
    words = " ".join(dict.fromkeys(_WORD.findall(fold(description))))
    short = fold("\n".join(field for field in fields if field)).replace(DESCRIPTION_MARK, " ")
    return f"{short}{DESCRIPTION_MARK} {words} "


def split(search_text: str) -> tuple[str, list[str]]:
    """The short fields of a search text and its description's words."""
    short, _, words = search_text.partition(DESCRIPTION_MARK)
    return short, words.split()

"""Words of a search: text folded for matching, and the words a query asks for.

Folding drops case and accents (``Ünïcode`` → ``unicode``) and applies Unicode's
compatibility forms (full-width letters); it runs once on the stored text and once on the
query, so matching is a plain substring test of each word.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")


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

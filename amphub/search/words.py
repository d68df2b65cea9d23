"""Words of a search: text folded for matching, and the words a query asks for.

Folding drops case and accents (``Ünïcode`` → ``unicode``) and applies Unicode's
compatibility forms (full-width letters); it runs once on the stored text and once on the
query. A model's search text holds its short fields (ids, name, card values), where each
query word is looked for as a substring, and then its description's words, which a query
word matches by being the beginning of one of them (`searchable`, `split`).

Chinese, Japanese and Korean are written without spaces, so a run of their characters is
split as search engines without a dictionary do (Lucene's CJK bigrams): into overlapping
pairs of characters, and the run's last character alone, both in the text and in a query.
"语音识别" asks for 语音, 音识 and 识别, which "这是一个语音识别模型" holds; a single
character matches as the beginning of a word (every character begins a pair or ends its run).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

_WORD = re.compile(r"[^\W_]+")
# Han (with its extensions and compatibility forms), kana, Hangul syllables and letters.
_CJK_CHARS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003ffff"
)
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_HAS_CJK = re.compile(f"[{_CJK_CHARS}]")
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
    # Hangul syllables decompose into letters: composed again, a pair is two syllables.
    return unicodedata.normalize("NFC", bare.casefold())


def words(folded: str) -> Iterator[str]:
    """The words of folded text: runs of letters and digits, CJK runs as pairs (see above)."""
    for word in _WORD.findall(folded):
        if word.isascii() or not _HAS_CJK.search(word):
            yield word
            continue
        at = 0
        for run in _CJK_RUN.finditer(word):
            if run.start() > at:
                yield word[at : run.start()]
            yield from _pairs(run.group())
            at = run.end()
        if at < len(word):
            yield word[at:]


def _pairs(run: str) -> Iterator[str]:
    for at in range(len(run) - 1):
        yield run[at : at + 2]
    yield run[-1]


def query_words(text: str) -> tuple[str, ...]:
    """The words a query asks for, folded; punctuation alone is one word as written.

    A CJK run of several characters asks for its pairs only (its last character is in its
    last pair).
    """
    folded = fold(text)
    found = _WORD.findall(folded)
    if not found:
        return (folded.strip(),) if folded.strip() else ()
    asked: list[str] = []
    for word in found:
        parts = list(words(word))
        for at, part in enumerate(parts):
            ends_run = at > 0 and len(part) == 1 and is_cjk(part) and is_cjk(parts[at - 1])
            if not ends_run:
                asked.append(part)
    return tuple(dict.fromkeys(asked))


def is_cjk(word: str) -> bool:
    """Whether a word is CJK characters (a pair or one)."""
    return bool(word) and _CJK_RUN.fullmatch(word) is not None


def is_prefix(word: str) -> bool:
    """Whether a query word matches the description words it begins (else only itself)."""
    return len(word) >= PREFIX_FROM or is_cjk(word)


def searchable(fields: Iterable[str], description: str) -> str:
    """The search text of a model: its short fields folded, then its description's words.

    Each distinct word once, in the order it first appears: the fields, the mark, " w1 w2 ", so
    that SQL finds a word's beginning as `' ' || word` after the one mark.
    """
    described = " ".join(dict.fromkeys(words(fold(description))))
    short = fold("\n".join(field for field in fields if field)).replace(DESCRIPTION_MARK, " ")
    return f"{short}{DESCRIPTION_MARK} {described} "


def split(search_text: str) -> tuple[str, list[str]]:
    """The short fields of a search text and its description's words."""
    short, _, described = search_text.partition(DESCRIPTION_MARK)
    return short, described.split()

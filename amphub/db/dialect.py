"""SQL as amphub writes it, made PostgreSQL's: placeholders and reserved names.

Statements are written once, in what both engines accept, with SQLite's `?`
placeholders. For psycopg each `?` becomes `%s` and a literal `%` is doubled. Two column
names, `user` and `offset`, are reserved words in PostgreSQL but not in SQLite; written in
lower case they are quoted (the keyword OFFSET is written in capitals). Quoted text is left
as it is.
"""

from __future__ import annotations

import functools
import re

_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\$\$.*?\$\$|\?|%|(?<![.\w])(?:user|offset)\b""", re.S
)


@functools.lru_cache(maxsize=4096)
def postgresql_sql(sql: str, *, placeholders: bool = True) -> str:
    """`sql` as psycopg passes it to PostgreSQL."""

    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token == "?":
            return "%s" if placeholders else token
        if token == "%":
            return "%%" if placeholders else token
        if token in ("user", "offset"):
            return f'"{token}"'
        return token  # quoted text or a function body

    return _TOKENS.sub(replace, sql)

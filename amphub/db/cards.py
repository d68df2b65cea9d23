"""Model cards as stored for display, filtering and full-text search."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from amphub.db.core import Connection, Database, Model, fetch_all, fetch_one, row_to
from amphub.db.sqlite_database import SqliteDatabase
from amphub.search.index import (
    CardFields,
    Criteria,
    Entry,
    Reachable,
    SearchIndex,
    SearchState,
    build,
)
from amphub.search.words import fold, is_prefix, query_words

__all__ = [
    "SORTS",
    "CardRow",
    "SearchQuery",
    "SearchResult",
    "SearchIndex",
    "Standing",
    "store_card",
    "get_card",
    "search_models",
    "warm_search_index",
    "search_models_by_sql",
    "facet_counts_by_sql",
]

SORTS = {
    "updated": "m.updated_at DESC, m.space_id, m.id",
    "created": "m.created_at DESC, m.space_id, m.id",
    "name": "m.name COLLATE NOCASE, m.space_id, m.id",
    "parameters": "c.parameters IS NULL, c.parameters DESC, m.space_id, m.id",
}
# Substring search uses the trigram index from three characters on; shorter text is
# matched by a scan (the trigram tokenizer cannot look up fewer than three).
TRIGRAM = 3
# A card's search text is its short fields, char(31), then " word word ... " of its
# description (amphub.search.words.searchable); a text stored before then has no char(31).
_MARK = "instr(c.search_text, char(31))"
_SHORT = f"CASE WHEN {_MARK} > 0 THEN substr(c.search_text, 1, {_MARK} - 1) ELSE c.search_text END"
_DESCRIBED = f"CASE WHEN {_MARK} > 0 THEN substr(c.search_text, {_MARK}) ELSE '' END"
# A model's columns, of `models m`.
_MODEL = "m.space_id, m.id, m.name, m.visibility, m.owner, m.created_at, m.updated_at"


@dataclass(frozen=True)
class CardRow:
    """What indexing stores for one model."""

    commit_id: str | None
    card_json: str
    task_type: str | None
    algorithm: str | None
    license: str | None
    parameters: int | None
    search_text: str
    values: tuple[tuple[str, str], ...]  # (field, value) for frameworks, tags, datasets


@dataclass(frozen=True)
class SearchQuery:
    """A search, with who may see what already worked out by the policy.

    `everything` skips the access clause (administrators); otherwise a model is in
    reach through its visibility, its owner or creator, or a granted role.
    """

    everything: bool = False
    user: str | None = None
    visibilities: tuple[str, ...] = ()
    owner_sees: bool = False
    creator_sees: bool = False
    model_roles: tuple[str, ...] = ()
    space_roles: tuple[str, ...] = ()
    live_after: str = ""
    text: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    min_parameters: int | None = None
    max_parameters: int | None = None


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))


def _access(query: SearchQuery) -> tuple[list[str], list[object]]:
    if query.everything:
        return [], []
    reach: list[str] = []
    args: list[object] = []
    if query.visibilities:
        reach.append(f"m.visibility IN ({_marks(query.visibilities)})")
        args += query.visibilities
    if query.user is not None:
        if query.owner_sees:
            reach.append("m.owner = ?")
            args.append(query.user)
        if query.creator_sees:
            reach.append("s.creator = ?")
            args.append(query.user)
        # Set-based subqueries: evaluated once per search, not once per model.
        if query.model_roles:
            reach.append(
                "(m.space_id, m.id) IN (SELECT space_id, model_id FROM model_members"
                f" WHERE user = ? AND role IN ({_marks(query.model_roles)}))"
            )
            args += [query.user, *query.model_roles]
        if query.space_roles:
            reach.append(
                "m.space_id IN (SELECT space_id FROM space_members"
                f" WHERE user = ? AND role IN ({_marks(query.space_roles)}))"
            )
            args += [query.user, *query.space_roles]
    return ["(" + (" OR ".join(reach) or "0") + ")"], args


def _where(query: SearchQuery) -> tuple[str, list[object]]:
    clauses, args = _access(query)
    clauses += ["s.released_at IS NULL", "(s.expires_at IS NULL OR s.expires_at > ?)"]
    args.append(query.live_after)
    for word in query_words(query.text):
        if len(word) >= TRIGRAM:  # narrows to the texts holding the word anywhere
            clauses.append("c.rowid IN (SELECT rowid FROM cards_fts WHERE cards_fts MATCH ?)")
            args.append('"' + word.replace('"', '""') + '"')
        # In the short fields, or a description word it begins (short: the whole word).
        clauses.append(f"(instr({_SHORT}, ?) > 0 OR instr({_DESCRIBED}, ?) > 0)")
        args += [word, f" {word}" if is_prefix(word) else f" {word} "]
    for name, value in query.filters.items():
        if name == "space":
            clauses.append("m.space_id = ?")
        elif name in ("task_type", "algorithm", "license"):
            clauses.append(f"c.{name} = ? COLLATE NOCASE")
        else:
            clauses.append(
                "(m.space_id, m.id) IN (SELECT space_id, model_id FROM card_values"
                " WHERE field = ? AND value = ? COLLATE NOCASE)"
            )
            args.append(name)
        args.append(value)
    if query.min_parameters is not None:
        clauses.append("c.parameters >= ?")
        args.append(query.min_parameters)
    if query.max_parameters is not None:
        clauses.append("c.parameters <= ?")
        args.append(query.max_parameters)
    return " AND ".join(clauses), args


def _from(query: SearchQuery) -> str:
    # Models without a card can only match a search that asks nothing of the card; an
    # inner join lets the planner start from the card side when it does.
    needs_card = query.text or query.min_parameters is not None or query.max_parameters is not None
    needs_card = needs_card or any(name != "space" for name in query.filters)
    join = "JOIN" if needs_card else "LEFT JOIN"
    return (
        " FROM models m JOIN spaces s ON s.id = m.space_id"
        f" {join} cards c ON c.space_id = m.space_id AND c.model_id = m.id"
    )


async def search_models_by_sql(
    db: Database, query: SearchQuery, sort: str, limit: int, offset: int
) -> list[tuple[Model, str | None]]:
    """One page of matching models, each with its card's JSON (None before indexing).

    The search written as SQL: what `search_models` answers from its index in memory must
    equal this, which tests/test_search.py and bench/search.py check. SQLite's SQL only
    (FTS5): it is the reference the index is checked against, on SQLite.
    """
    assert isinstance(db, SqliteDatabase), "the reference search is written for SQLite"
    where, args = _where(query)
    words = query_words(query.text)
    # Models whose id or name holds every word come first.
    titled = " AND ".join(["instr(amphub_fold(m.id || char(10) || m.name), ?) > 0"] * len(words))
    order = f"({titled}) DESC, {SORTS[sort]}" if words else SORTS[sort]
    await db.conn.create_function("amphub_fold", 1, fold, deterministic=True)
    # Sort and cut the page on narrow rows first; only the page's cards are read.
    rows = await fetch_all(
        db,
        f"SELECT {_MODEL}, c.card AS card_json FROM models m"
        " LEFT JOIN cards c ON c.space_id = m.space_id AND c.model_id = m.id"
        f" WHERE m.rowid IN (SELECT m.rowid {_from(query)} WHERE {where}"
        f" ORDER BY {order} LIMIT ? OFFSET ?) ORDER BY {order}",
        *args,
        *words,
        limit,
        offset,
        *words,
    )
    return [(row_to(Model, row), row["card_json"]) for row in rows]


async def facet_counts_by_sql(db: Database, query: SearchQuery) -> dict[str, dict[str, int]]:
    """Counts per space, framework, task type, algorithm and license among the matches (SQL).

    SQLite only, as `search_models_by_sql`.
    """
    assert isinstance(db, SqliteDatabase), "the reference search is written for SQLite"
    where, args = _where(query)
    matching = (
        f"SELECT m.space_id, m.id, c.task_type, c.algorithm, c.license {_from(query)} WHERE {where}"
    )
    rows = await fetch_all(
        db,
        f"WITH hit AS MATERIALIZED ({matching})"
        " SELECT 'space', space_id, count(*) FROM hit GROUP BY space_id"
        " UNION ALL SELECT 'task_type', task_type, count(*) FROM hit"
        " WHERE task_type IS NOT NULL GROUP BY task_type"
        " UNION ALL SELECT 'algorithm', algorithm, count(*) FROM hit"
        " WHERE algorithm IS NOT NULL GROUP BY algorithm"
        " UNION ALL SELECT 'license', license, count(*) FROM hit"
        " WHERE license IS NOT NULL GROUP BY license"
        # CROSS JOIN keeps the hits as the outer loop: the planner would otherwise read
        # every framework value of every card and probe the hits for each.
        " UNION ALL SELECT 'framework', v.value, count(*) FROM hit CROSS JOIN card_values v"
        " ON v.space_id = hit.space_id AND v.model_id = hit.id AND v.field = 'framework'"
        " GROUP BY v.value",
        *args,
    )
    facets: dict[str, dict[str, int]] = {
        "space": {},
        "framework": {},
        "task_type": {},
        "algorithm": {},
        "license": {},
    }
    for name, value, count in rows:
        facets[name][value] = count
    return facets


class Standing(NamedTuple):
    """A found model's space creator and the roles the caller holds in the space and model."""

    creator: str
    space_role: str | None
    model_role: str | None


@dataclass(frozen=True)
class SearchResult:
    """One page of a search, each model with its card's JSON, the total and the facets.

    `standing` goes with `models`, one for each: what the policy needs to say what else
    the caller may do with the model.
    """

    models: list[tuple[Model, str | None]]
    total: int
    facets: dict[str, dict[str, int]]
    standing: list[Standing]


# Each model with its card's search fields; each card's values, as JSON [[field, value]];
# each model's members, as JSON [[user, role]].
_ENTRIES = (
    f"SELECT {_MODEL}, c.model_id IS NOT NULL, c.task_type, c.algorithm, c.license, c.parameters,"
    " c.search_text FROM models m"
    " LEFT JOIN cards c ON c.space_id = m.space_id AND c.model_id = m.id"
)
# Each model's card values and members as JSON text, by engine.
_AS_JSON = {
    "sqlite": "json_group_array(json_array({}, {}))",
    "postgresql": "json_agg(json_build_array({}, {}))::text",
}
_VALUES = "SELECT space_id, model_id, {} FROM card_values"
_MEMBERS = "SELECT space_id, model_id, {} FROM model_members"
_CHANGED = "IN (SELECT space_id, model_id FROM search_changes WHERE seq > ?)"


async def search_models(
    db: Database, index: SearchIndex, query: SearchQuery, sort: str, limit: int, offset: int
) -> SearchResult:
    """Search the models in the caller's reach: one page, the number of matches, the facets.

    The index first replays whatever was written since it last looked (models, cards,
    card values, model roles), so that a search made after a write sees it; spaces, their
    lifetimes and the caller's space roles are read with each search. While a worker thread
    builds the index anew (the first search after a start), SQLite answers with the SQL form
    instead of waiting; PostgreSQL waits (the SQL form is SQLite's).
    """
    if index.building and db.dialect == "sqlite":
        return await _search_by_sql(db, query, sort, limit, offset)
    await _catch_up(db, index)
    reachable = await _reachable(db, query)
    criteria = Criteria(
        words=query_words(query.text),
        filters=tuple(query.filters.items()),
        min_parameters=query.min_parameters,
        max_parameters=query.max_parameters,
    )
    found = index.search(reachable, criteria, sort, limit, offset)
    page = await _page_rows(db, found.keys, query.user)
    return SearchResult(
        [(model, card_json) for model, card_json, _ in page],
        found.total,
        found.facets,
        [standing for _, _, standing in page],
    )


async def _search_by_sql(
    db: Database, query: SearchQuery, sort: str, limit: int, offset: int
) -> SearchResult:
    """The answer of `search_models`, from the SQL form of the search."""
    found = await search_models_by_sql(db, query, sort, limit, offset)
    facets = await facet_counts_by_sql(db, query)
    page = await _page_rows(db, [(model.space_id, model.id) for model, _ in found], query.user)
    return SearchResult(
        [(model, card_json) for model, card_json, _ in page],
        sum(facets["space"].values()),
        facets,
        [standing for _, _, standing in page],
    )


async def warm_search_index(db: Database, index: SearchIndex) -> None:
    """Build the index now, so that the first search after a start need not."""
    await _catch_up(db, index)


async def _catch_up(db: Database, index: SearchIndex) -> None:
    # Outside the write lock this may read a change not committed yet; that only means
    # waiting below for its transaction to end, and then reading what it committed.
    row = await fetch_one(db, "SELECT seq FROM search_clock")
    assert row is not None  # the clock's one row is there from its migration on
    if row[0] == index.applied:
        return
    async with index.updating:
        try:
            await _update(db, index)
        finally:
            index.building = False


async def _update(db: Database, index: SearchIndex) -> None:
    """Replay the changes since the index last looked, or build it anew from every model."""
    # The write lock keeps this connection's own uncommitted writes out of the reads.
    async with db.transaction() as conn:
        latest = await _clock(conn)
        if latest == index.applied:
            return
        changed = None
        if index.applied is not None:
            cursor = await conn.execute(
                "SELECT space_id, model_id FROM search_changes WHERE seq > ?",
                (index.applied,),
            )
            changed = [(row[0], row[1]) for row in await cursor.fetchall()]
            if len(changed) > index.replay_limit:
                changed = None
        index.building = changed is None  # from the read of every model on
        rows = await _rows(conn, db.dialect, index.applied if changed is not None else None)
    if changed is None:  # a worker thread builds it, the loop serves meanwhile
        index.replace(await asyncio.to_thread(_built, rows), latest)
    else:
        index.apply(changed, list(_entries(rows)), latest)
        if index.purge_due():  # nothing changes the index meanwhile: `updating` is held
            index.adopt(await asyncio.to_thread(index.purged))


async def _clock(conn: Connection) -> int:
    row = await (await conn.execute("SELECT seq FROM search_clock")).fetchone()
    assert row is not None  # the clock's one row is there from its migration on
    return int(row[0])


# Plain tuples, of _ENTRIES, _VALUES and _MEMBERS.
Rows = tuple[Iterable[Sequence[Any]], Iterable[Sequence[Any]], Iterable[Sequence[Any]]]


async def _rows(conn: Connection, dialect: str, after: int | None) -> Rows:
    """The rows of every model (`after` None), or of those changed after that point."""
    found: list[Iterable[Sequence[Any]]] = []
    as_json = _AS_JSON[dialect]
    statements = (
        _ENTRIES,
        _VALUES.format(as_json.format("field", "value")),
        _MEMBERS.format(as_json.format("user", "role")),
    )
    for sql in statements:
        key = "(m.space_id, m.id)" if sql is _ENTRIES else "(space_id, model_id)"
        changed = f" WHERE {key} {_CHANGED}" if after is not None else ""
        grouped = " GROUP BY space_id, model_id" if sql is not _ENTRIES else ""
        cursor = await conn.execute(sql + changed + grouped, () if after is None else (after,))
        if dialect == "sqlite":
            cursor.row_factory = None  # plain tuples: a rebuild reads every model
        found.append(await cursor.fetchall())
        await cursor.close()
    return found[0], found[1], found[2]


def _entries(rows: Rows) -> Iterator[Entry]:
    """The entries of the rows, one at a time (a rebuild holds no list of them all)."""
    models, values, members = rows
    values_of = {(row[0], row[1]): row[2] for row in values}
    members_of = {(row[0], row[1]): row[2] for row in members}
    for row in models:
        (
            space_id,
            model_id,
            name,
            visibility,
            owner,
            created_at,
            updated_at,
            has_card,
            task_type,
            algorithm,
            license,
            parameters,
            search_text,
        ) = row  # the columns of _ENTRIES, in its order
        key = (space_id, model_id)
        card = None
        if has_card:
            found = json.loads(values_of.get(key, "[]"))
            card = CardFields(
                task_type=task_type,
                algorithm=algorithm,
                license=license,
                parameters=parameters,
                search_text=search_text,
                values=tuple(map(tuple, found)),
            )
        granted = tuple(map(tuple, json.loads(members_of[key]))) if key in members_of else ()
        yield Entry(
            space_id=space_id,
            model_id=model_id,
            name=name,
            visibility=visibility,
            owner=owner,
            created_at=created_at,
            updated_at=updated_at,
            card=card,
            members=granted,
        )


def _built(rows: Rows) -> SearchState:
    return build(_entries(rows))


async def _reachable(db: Database, query: SearchQuery) -> Reachable:
    """What `_access` says in SQL, for the index: the spaces in and out of reach.

    Spaces, their lifetimes and the caller's space roles are read in one statement; the
    model roles granted are in the index itself.
    """
    user = query.user if not query.everything else None
    space_roles = query.space_roles or ("",)  # no role is ""
    rows = await fetch_all(
        db,
        "SELECT s.id, s.creator, s.released_at, s.expires_at, sm.role IS NOT NULL"
        " FROM spaces s LEFT JOIN space_members sm ON sm.space_id = s.id AND sm.user = ?"
        f" AND sm.role IN ({_marks(space_roles)})",
        user,
        *space_roles,
    )
    dead = frozenset(
        row[0]
        for row in rows
        if row[2] is not None or (row[3] is not None and not row[3] > query.live_after)
    )
    if query.everything:
        return Reachable(everything=True, dead_spaces=dead)
    whole = frozenset(
        space_id
        for space_id, creator, _, _, has_role in rows
        if user is not None and (has_role or (query.creator_sees and creator == user))
    )
    return Reachable(
        visibilities=query.visibilities,
        user=user,
        owned=query.owner_sees,
        model_roles=query.model_roles,
        spaces=whole,
        dead_spaces=dead,
    )


async def _page_rows(
    db: Database, keys: Sequence[tuple[str, str]], user: str | None
) -> list[tuple[Model, str | None, Standing]]:
    if not keys:
        return []
    rows = await fetch_all(
        db,
        f"SELECT {_MODEL}, c.card AS card_json, s.creator, sm.role AS space_role,"
        " mm.role AS model_role"
        f" FROM (VALUES {', '.join('(?, ?)' for _ in keys)}) AS k"
        " JOIN models m ON m.space_id = k.column1 AND m.id = k.column2"
        " JOIN spaces s ON s.id = m.space_id"
        " LEFT JOIN cards c ON c.space_id = m.space_id AND c.model_id = m.id"
        " LEFT JOIN space_members sm ON sm.space_id = m.space_id AND sm.user = ?"
        " LEFT JOIN model_members mm ON mm.space_id = m.space_id AND mm.model_id = m.id"
        " AND mm.user = ?",
        *(part for key in keys for part in key),
        user,
        user,
    )
    found = {
        (row["space_id"], row["id"]): (
            row_to(Model, row),
            row["card_json"],
            Standing(row["creator"], row["space_role"], row["model_role"]),
        )
        for row in rows
    }
    # A model deleted since the index answered is left out of the page.
    return [found[key] for key in keys if key in found]


async def store_card(db: Database, space_id: str, model_id: str, row: CardRow) -> None:
    """Replace a model's card and its filter values."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO cards (space_id, model_id, commit_id, card, task_type, algorithm,"
            " license, parameters, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (space_id, model_id) DO UPDATE SET commit_id = excluded.commit_id,"
            " card = excluded.card, task_type = excluded.task_type,"
            " algorithm = excluded.algorithm, license = excluded.license,"
            " parameters = excluded.parameters, search_text = excluded.search_text",
            (
                space_id,
                model_id,
                row.commit_id,
                row.card_json,
                row.task_type,
                row.algorithm,
                row.license,
                row.parameters,
                row.search_text,
            ),
        )
        # Values that stay are left alone (an ignored insert writes nothing), so that a
        # push that keeps them logs no change of them for search.
        kept = ""
        if row.values:
            kept = " AND (field, value) NOT IN (VALUES " + ", ".join(["(?, ?)"] * len(row.values))
            kept += ")"
        await conn.execute(
            "DELETE FROM card_values WHERE space_id = ? AND model_id = ?" + kept,
            (space_id, model_id, *(part for value in row.values for part in value)),
        )
        await conn.executemany(
            "INSERT INTO card_values (space_id, model_id, field, value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(space_id, model_id, name, value) for name, value in row.values],
        )


async def get_card(db: Database, space_id: str, model_id: str) -> tuple[str | None, str] | None:
    """(commit indexed, card JSON) of a model, None before its first indexing."""
    row = await fetch_one(
        db,
        "SELECT commit_id, card FROM cards WHERE space_id = ? AND model_id = ?",
        space_id,
        model_id,
    )
    return (row[0], row[1]) if row else None

"""Model cards as stored for display, filtering and full-text search."""

from __future__ import annotations

from dataclasses import dataclass, field

from amphub.db.core import Database, Model, fetch_all, fetch_one

__all__ = [
    "SORTS",
    "CardRow",
    "SearchQuery",
    "store_card",
    "get_card",
    "search_models",
    "facet_counts",
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
    text = query.text.lower()
    if len(text) >= TRIGRAM:
        clauses.append("c.rowid IN (SELECT rowid FROM cards_fts WHERE cards_fts MATCH ?)")
        args.append('"' + text.replace('"', '""') + '"')
    elif text:
        clauses.append("instr(c.search_text, ?) > 0")
        args.append(text)
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


async def search_models(
    db: Database, query: SearchQuery, sort: str, limit: int, offset: int
) -> list[tuple[Model, str | None]]:
    """One page of matching models, each with its card's JSON (None before indexing)."""
    where, args = _where(query)
    # Sort and cut the page on narrow rows first; only the page's cards are read.
    rows = await fetch_all(
        db,
        "SELECT m.*, c.card AS card_json FROM models m"
        " LEFT JOIN cards c ON c.space_id = m.space_id AND c.model_id = m.id"
        f" WHERE m.rowid IN (SELECT m.rowid {_from(query)} WHERE {where}"
        f" ORDER BY {SORTS[sort]} LIMIT ? OFFSET ?) ORDER BY {SORTS[sort]}",
        *args,
        limit,
        offset,
    )
    return [
        (
            Model(
                r["space_id"],
                r["id"],
                r["name"],
                r["visibility"],
                r["owner"],
                r["created_at"],
                r["updated_at"],
            ),
            r["card_json"],
        )
        for r in rows
    ]


async def facet_counts(db: Database, query: SearchQuery) -> dict[str, dict[str, int]]:
    """Counts per space, framework, task type and algorithm among the matching models."""
    where, args = _where(query)
    matching = f"SELECT m.space_id, m.id, c.task_type, c.algorithm {_from(query)} WHERE {where}"
    rows = await fetch_all(
        db,
        f"WITH hit AS MATERIALIZED ({matching})"
        " SELECT 'space', space_id, count(*) FROM hit GROUP BY space_id"
        " UNION ALL SELECT 'task_type', task_type, count(*) FROM hit"
        " WHERE task_type IS NOT NULL GROUP BY task_type"
        " UNION ALL SELECT 'algorithm', algorithm, count(*) FROM hit"
        " WHERE algorithm IS NOT NULL GROUP BY algorithm"
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
    }
    for name, value, count in rows:
        facets[name][value] = count
    return facets


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
        await conn.execute(
            "DELETE FROM card_values WHERE space_id = ? AND model_id = ?", (space_id, model_id)
        )
        await conn.executemany(
            "INSERT OR IGNORE INTO card_values (space_id, model_id, field, value)"
            " VALUES (?, ?, ?, ?)",
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

"""Keeping cards current: read master's README.md, parse it, store the card and its index."""

from __future__ import annotations

import json

from amphub import db
from amphub.cards import Card, parse_card
from amphub.search.words import searchable
from amphub.services.hub import Hub
from amphub.storage.repos import read_readme

# How much of the description search reads: its words are indexed (amphub.search.described),
# so a longer text costs memory (about 4 bytes per distinct word), not search time.
DESCRIPTION_SEARCHED = 64 * 1024


def search_text(model: db.Model, card: Card) -> str:
    """What free-text search looks in: ids, name, the card's values; the description's words."""
    fields = [
        model.id,
        model.name,
        model.space_id,
        *card.frameworks,
        card.task_type or "",
        card.algorithm or "",
        *card.tags,
        card.license or "",
        *card.dataset_names(),
    ]
    return searchable(fields, card.description[:DESCRIPTION_SEARCHED])


def card_row(model: db.Model, commit_id: str | None, card: Card) -> db.CardRow:
    """The stored form of a card."""
    values = [("framework", f) for f in card.frameworks]
    values += [("tag", t) for t in card.tags]
    values += [("dataset", d) for d in card.dataset_names()]
    return db.CardRow(
        commit_id=commit_id,
        card_json=json.dumps(card.to_json(), ensure_ascii=False),
        task_type=card.task_type,
        algorithm=card.algorithm,
        license=card.license,
        parameters=card.parameters,
        search_text=search_text(model, card),
        values=tuple(values),
    )


async def refresh_card(hub: Hub, space_id: str, model_id: str) -> None:
    """Re-read a model's README on master and store its card (a deleted README: empty card).

    One indexing per model at a time, so the latest master wins.
    """
    async with hub.locks.hold(("card", space_id, model_id)):
        model = await db.get_model(hub.db, space_id, model_id)
        if model is None:
            return
        path = hub.repos.path(space_id, model_id)
        commit_id, readme = await hub.run_blocking(lambda: read_readme(path))
        card = await hub.run_blocking(lambda: parse_card(readme))
        await db.store_card(hub.db, space_id, model_id, card_row(model, commit_id, card))


async def reindex_all(hub: Hub) -> int:
    """Rebuild every card from the repositories; returns how many models were indexed."""
    models = await db.list_models(hub.db)
    for model in models:
        await refresh_card(hub, model.space_id, model.id)
    return len(models)

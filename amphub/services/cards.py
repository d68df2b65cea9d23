"""Keeping cards current: read master's README.md, parse it, store the card and its index."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from amphub import db
from amphub.cards import Card, parse_card
from amphub.config import Config
from amphub.services.hub import Hub
from amphub.storage.repos import DEFAULT_BRANCH, repo_path

README = b"README.md"
# How blocking work is run: the server's git threads, or a plain thread offline.
Runner = Callable[[Callable[[], Any]], Awaitable[Any]]


def read_readme(path: Path) -> tuple[str | None, bytes]:
    """(master's commit id, README.md's bytes) of a repository; b"" where there is none."""
    with Repo(str(path)) as repo:
        try:
            commit_id = repo.refs[DEFAULT_BRANCH]
        except KeyError:
            return None, b""
        commit = repo[commit_id]
        tree = repo[commit.tree] if isinstance(commit, Commit) else None
        if not isinstance(tree, Tree) or README not in tree:
            return commit_id.decode(), b""
        _, sha = tree[README]
        blob = repo[sha]
        return commit_id.decode(), blob.as_raw_string() if isinstance(blob, Blob) else b""


def search_text(model: db.Model, card: Card) -> str:
    """What free-text search looks in: ids, name, tags, license and dataset names."""
    parts = [model.id, model.name, *card.tags, card.license or "", *card.dataset_names()]
    return "\n".join(part for part in parts if part).lower()


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


async def index_model(
    database: db.Database, config: Config, run: Runner, space_id: str, model_id: str
) -> None:
    """Re-read a model's README on master and store its card (a deleted README: empty card)."""
    model = await db.get_model(database, space_id, model_id)
    if model is None:
        return
    path = repo_path(config, space_id, model_id)
    commit_id, readme = await run(lambda: read_readme(path))
    card = await run(lambda: parse_card(readme))
    await db.store_card(database, space_id, model_id, card_row(model, commit_id, card))


async def reindex_all(database: db.Database, config: Config, run: Runner) -> int:
    """Rebuild every card from the repositories; returns how many models were indexed."""
    models = await db.list_models(database)
    for model in models:
        await index_model(database, config, run, model.space_id, model.id)
    return len(models)


async def refresh_card(hub: Hub, space_id: str, model_id: str) -> None:
    """Index a model in the server; one indexing per model at a time, latest master wins."""
    async with hub.locks.hold(("card", space_id, model_id)):
        run = hub.run_blocking
        await index_model(hub.db, hub.config, run, space_id, model_id)

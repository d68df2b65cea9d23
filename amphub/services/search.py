"""Searching models: what the caller may retrieve, matched, sorted, counted by facet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from amphub import db
from amphub.cards import canonical_algorithm, canonical_framework, canonical_task_type
from amphub.clock import rfc3339
from amphub.policy import Action, Actor, allowed
from amphub.policy.matrix import MODEL_ACTIONS, reach
from amphub.services.hub import Hub
from amphub.services.permissions import model_target


@dataclass(frozen=True)
class ModelSearch:
    """What a caller looks for: text, filters, a parameter range, a sort and a page."""

    text: str = ""
    filters: Mapping[str, str] = field(default_factory=dict)
    min_parameters: int | None = None
    max_parameters: int | None = None
    sort: str = "updated"
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class FoundModels:
    """One page of matching models, with what the caller may do with each."""

    result: db.SearchResult
    permissions: list[set[Action]]


def model_query(who: Actor, search: ModelSearch, live_after: str) -> db.SearchQuery:
    """The search with what the policy lets the caller retrieve worked out.

    Spaces whose grace period ended before `live_after` are out of reach until renewed.
    """
    can = reach(who, Action.RETRIEVE)
    return db.SearchQuery(
        everything=can.everything,
        user=who.name,
        visibilities=can.visibilities,
        owner_sees=can.model_owner,
        creator_sees=can.space_owner,
        model_roles=can.model_roles,
        space_roles=can.space_roles,
        live_after=live_after,
        text=search.text.strip(),
        filters={name: canonical_filter(name, value) for name, value in search.filters.items()},
        min_parameters=search.min_parameters,
        max_parameters=search.max_parameters,
    )


def canonical_filter(name: str, value: str) -> str:
    """A filter's value in the taxonomy's spelling, as the card parser reads it (`cv`)."""
    if name == "framework":
        return canonical_framework(value) or value
    if name == "task_type":
        return canonical_task_type(value) or value
    if name == "algorithm":
        return canonical_algorithm(value)[1] or value
    return value


async def search_models(hub: Hub, who: Actor, search: ModelSearch) -> FoundModels:
    """One page of the models the caller may retrieve, the number of matches, the facets."""
    live_after = rfc3339(hub.clock() - timedelta(days=hub.config.grace_days))
    query = model_query(who, search, live_after)
    found = await db.search_models(
        hub.db, hub.search, query, search.sort, search.limit, search.offset
    )
    return FoundModels(found, _permissions(who, found))


def _permissions(who: Actor, found: db.SearchResult) -> list[set[Action]]:
    """What the caller may do with each model of a page (the search read their roles)."""
    may = []
    for (model, _), standing in zip(found.models, found.standing, strict=True):
        target = model_target(
            standing.creator, model, who, standing.space_role, standing.model_role
        )
        may.append({a for a in MODEL_ACTIONS if allowed(who, a, target)})
    return may

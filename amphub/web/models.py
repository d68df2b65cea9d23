"""The models home (cards, search, filters) and a model's card and settings pages."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from amphub.api import models as models_api
from amphub.api import spaces as spaces_api
from amphub.cards import FRAMEWORKS, TASK_TYPES
from amphub.http import keys
from amphub.http.access import require_model
from amphub.http.urls import base_url
from amphub.policy import Action
from amphub.policy.matrix import VISIBILITIES
from amphub.search.words import fold, query_words
from amphub.services.search import canonical_filter
from amphub.web.modelpage import header, viewable_model
from amphub.web.rendered import readme_html
from amphub.web.view import human_count, link, page, redirect

PER_PAGE = 20  # the API's own default page size
FACETS = (
    ("space", "Model space"),
    ("framework", "Training framework"),
    ("task_type", "Task type"),
    ("algorithm", "Algorithm"),
    ("license", "License"),
)
# The filters a chip can name, beyond the facets.
FILTER_TITLES = dict(FACETS) | {"tag": "Tag", "dataset": "Dataset"}
# Values outside the taxonomy stay searchable, but are not offered as facets.
KNOWN_VALUES = {
    "framework": frozenset(FRAMEWORKS),
    "task_type": frozenset(TASK_TYPES),
    "algorithm": frozenset(a for algorithms in TASK_TYPES.values() for a in algorithms),
}
PARAMETER_RANGES = (
    ("Under 100M", None, 99_999_999),
    ("100M to 1B", 100_000_000, 999_999_999),
    ("1B to 10B", 1_000_000_000, 9_999_999_999),
    ("10B and more", 10_000_000_000, None),
)
FACET_PREVIEW = 6
SORT_LABELS = {
    "updated": "Recently updated",
    "created": "Recently created",
    "name": "Name",
    "parameters": "Most parameters",
}
GRANTABLE_ROLES = models_api.GRANTABLE_MODEL_ROLES


def performance_summary(card: dict | None) -> str:
    """The first evaluation of a card in one line: `LAMBADA · PPL 35.13 · ACC 45.99`."""
    if not card or not card.get("performance"):
        return ""
    first = card["performance"][0]
    metrics = list(first.get("metrics", {}).items())[:3]
    parts = [first["dataset"]["name"], *(f"{name} {value:.4g}" for name, value in metrics)]
    return " · ".join(parts)


def _facet_groups(request: web.Request, facets: dict, expand: bool) -> list[dict]:
    """Each filter's values with their counts, most common first, and its link on or off."""
    groups = []
    for key, title in FACETS:
        # Filters match regardless of case, and take the card parser's aliases (`cv`).
        chosen = canonical_filter(key, request.query.get(key, "")).lower()
        known = KNOWN_VALUES.get(key)
        counts = [(v, n) for v, n in facets.get(key, {}).items() if known is None or v in known]
        counts.sort(key=lambda item: (-item[1], item[0]))
        shown = counts if expand else counts[:FACET_PREVIEW]
        # The chosen value stays in sight, so it can be switched off again.
        shown += [item for item in counts if chosen and item[0].lower() == chosen][:1]
        shown = list(dict.fromkeys(shown))
        items = []
        for value, count in shown:
            on = value.lower() == chosen
            href = link(request, **{key: None if on else value, "page": None})
            items.append({"value": value, "count": count, "on": on, "href": href})
        groups.append(
            {"key": key, "title": title, "items": items, "hidden": len(counts) - len(shown)}
        )
    return groups


def _parameter_ranges(request: web.Request) -> list[dict]:
    """The parameter ranges as links, the chosen one on (a second click clears it)."""
    low, high = request.query.get("parameters_min", ""), request.query.get("parameters_max", "")
    ranges = []
    for label, start, end in PARAMETER_RANGES:
        on = (low, high) == (str(start or ""), str(end or ""))
        low_bound, high_bound = (None, None) if on else (start, end)
        href = link(request, page=None, parameters_min=low_bound, parameters_max=high_bound)
        ranges.append({"label": label, "on": on, "href": href})
    return ranges


def _chips(request: web.Request) -> list[dict]:
    """The search and each filter in force, each with the address without it."""
    chips = []
    if request.query.get("q"):
        chips.append({"label": f"Search: {request.query['q']}", "href": link(request, q=None)})
    for key, title in FILTER_TITLES.items():
        if request.query.get(key):
            label = f"{title}: {canonical_filter(key, request.query[key])}"
            chips.append({"label": label, "href": link(request, page=None, **{key: None})})
    bounds = [request.query.get(f"parameters_{end}") for end in ("min", "max")]
    if any(bounds):
        low, high = (human_count(int(b)) if b and b.isdigit() else b or "" for b in bounds)
        chips.append(
            {
                "label": f"Parameters: {low or '0'} to {high or 'any'}",
                "href": link(request, page=None, parameters_min=None, parameters_max=None),
            }
        )
    return chips


async def _suggestions(request: web.Request, q: str) -> list[dict]:
    """For a search that found nothing: the facet values, in reach, that its words name."""
    words = query_words(q)
    everything = await models_api.search_answer(request.clone(rel_url="/?per_page=1"))
    found = []
    for key, title in FACETS:
        known = KNOWN_VALUES.get(key)
        for value, count in everything["facets"].get(key, {}).items():
            if known is not None and value not in known:
                continue
            if not words or any(word in fold(value) for word in words):
                href = link(request, "/", **{name: None for name in request.query}, **{key: value})
                found.append({"label": f"{title}: {value}", "count": count, "href": href})
    found.sort(key=lambda item: -item["count"])
    return found[:8]


async def get_home(request: web.Request) -> web.Response:
    """Model cards the caller may retrieve, searched, filtered, sorted and paged."""
    found = await models_api.search_answer(request)
    per_page = int(request.query.get("per_page", PER_PAGE))
    current = int(request.query.get("page", 1))
    expand = request.query.get("expand") == "1"
    for model in found["models"]:
        model["summary"] = performance_summary(model.get("card"))
    chips = _chips(request)
    q = request.query.get("q", "")
    suggestions = await _suggestions(request, q) if not found["total"] and chips else []
    return page(
        request,
        "models.html",
        found=found,
        q=request.query.get("q", ""),
        sort=request.query.get("sort", "updated"),
        sorts=SORT_LABELS,
        kept={k: v for k, v in request.query.items() if k in models_api.FILTERS and v},
        groups=_facet_groups(request, found["facets"], expand),
        chips=chips,
        suggestions=suggestions,
        ranges=_parameter_ranges(request),
        expand=expand,
        current=current,
        pages=max(1, math.ceil(found["total"] / per_page)),
    )


def _files_base(detail: dict, rev: str) -> tuple[str, str]:
    home = f"/{detail['space']}/{detail['id']}"
    return f"{home}/blob/{rev}/", f"{home}/raw/{rev}/"


def _metric_names(performance: list[dict]) -> list[str]:
    return list(dict.fromkeys(name for row in performance for name in row.get("metrics", {})))


async def get_model_page(request: web.Request) -> web.StreamResponse:
    """A model's card: information, README, performance, data, replicas, deployments, scan."""
    model_id = request.match_info["model"]
    if model_id.endswith(".git"):  # the clone URL pasted into a browser
        return redirect(f"/{request.match_info['space']}/{model_id[:-4]}")
    access = await viewable_model(request)
    detail = await models_api.detail_json(request, access)
    card = detail.get("card") or {}
    rev = detail.get("card_commit") or "master"
    files, raw = _files_base(detail, rev)
    hub = request.app[keys.HUB]
    readme, performance_text = await asyncio.gather(
        readme_html(hub, card.get("description", ""), files, raw),
        readme_html(hub, card.get("performance_text", ""), files, raw),
    )
    return page(
        request,
        "model.html",
        m=header(request, access, "card"),
        model=detail,
        card=card,
        readme=readme,
        performance_text=performance_text,
        hf_endpoint=base_url(request),
        metric_names=_metric_names(card.get("performance", [])),
    )


async def get_settings(request: web.Request) -> web.Response:
    """Rename, visibility, members, tasks to start, deletion: for those who may edit."""
    access = await viewable_model(request)
    editable = await require_model(request, access.space.id, access.model.id, Action.EDIT)
    detail = await models_api.detail_json(request, editable)
    members = await models_api.members_json(request, editable)
    # Owners and maintainers of the space hold every model permission without being listed.
    space_members = await spaces_api.members_json(request, access.space)
    inherited = [m for m in space_members if m["role"] in ("owner", "maintainer")]
    refs = detail.get("refs") or {"branches": [], "tags": []}
    return page(
        request,
        "settings.html",
        m=header(request, access, "settings"),
        model=detail,
        members=members,
        inherited=inherited,
        roles=GRANTABLE_ROLES,
        visibilities=VISIBILITIES,
        refs=refs,
    )

"""Model info, the model list and whoami, in the shapes huggingface_hub reads.

Numbers amphub does not keep (downloads, likes) are 0; `private` is true for every model
that is not public. A model the caller may view but not read is shown as the Hub shows a
gated one: its card, no files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from amphub import db
from amphub.cards import canonical_algorithm, canonical_framework, parse_card
from amphub.errors import Unauthorized
from amphub.hf.access import repository, require_repo, revision_resolver, run_git
from amphub.hf.card import card_data, front_matter, library_name, model_tags, pipeline_tag
from amphub.hf.paging import flag, paged_response, requested_page
from amphub.hf.repo import (
    HubEntry,
    default_branch,
    list_entries,
    read_optional,
    shown_commit,
)
from amphub.http import keys
from amphub.http.access import ModelAccess, actor
from amphub.policy import Action, allowed, lifetime
from amphub.services.permissions import space_target
from amphub.services.search import ModelSearch, search_models
from amphub.services.spaces import space_status

MODELS_PAGE = 100
MAX_MODELS_PAGE = 1000
# The Hub's sort keys and amphub's.
SORTS = {"lastModified": "updated", "createdAt": "created", "id": "name"}


def _expand(request: web.Request, info: dict[str, Any]) -> dict[str, Any]:
    """Only the properties `expand` asks for, if it asks (the id always)."""
    wanted = request.query.getall("expand", []) + request.query.getall("expand[]", [])
    if not wanted:
        return info
    return {key: value for key, value in info.items() if key in {"_id", "id", *wanted}}


def _summary(model: db.Model, card: dict[str, Any]) -> dict[str, Any]:
    """What the Hub says of every model, in lists and in model info."""
    repo_id = f"{model.space_id}/{model.id}"
    return {
        "_id": repo_id,
        "id": repo_id,
        "modelId": repo_id,
        "author": model.space_id,
        "private": model.visibility != "public",
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "createdAt": model.created_at,
        "lastModified": model.updated_at,
        "library_name": library_name(card),
        "pipeline_tag": pipeline_tag(card),
        "tags": model_tags(card),
    }


def _sibling(entry: HubEntry, blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": entry.path}
    sibling: dict[str, Any] = {"rfilename": entry.path, "size": entry.size, "blobId": entry.oid}
    if entry.lfs:
        sibling["lfs"] = {
            "size": entry.lfs.size,
            "sha256": entry.lfs.oid,
            "pointerSize": entry.pointer_size,
        }
    return sibling


def _snapshot(
    resolve: Callable[[Path, str], str], path: Path, rev: str, readable: bool
) -> tuple[str, list[HubEntry], bytes]:
    """(commit id, its files, README.md) of a revision; no files where the caller may not read."""
    commit_id = resolve(path, rev)
    if not readable:
        return commit_id, [], b""
    files = [e for e in list_entries(path, commit_id, "", True) if e.type == "file"]
    return commit_id, files, read_optional(path, commit_id, "README.md")


async def _security_status(
    request: web.Request, access: ModelAccess, commit_id: str
) -> dict[str, Any]:
    """The last scan of this commit as the Hub's securityRepoStatus, amphub's summary added."""
    scan = await db.last_scan(
        request.app[keys.HUB].db, access.space.id, access.model.id, commit_id=commit_id
    )
    if scan is None:
        return {"scansDone": False, "filesWithIssues": []}
    result = json.loads(scan.result or "{}")
    issues = [
        {"path": name, "level": verdict["status"], "findings": verdict.get("findings", [])}
        for name, verdict in result.get("files", {}).items()
        if verdict["status"] not in ("safe", "skipped")
    ]
    return {
        "scansDone": True,
        "filesWithIssues": issues,
        "status": result.get("summary", {}).get("status"),
        "commit": commit_id,
        "scannedAt": scan.finished_at,
        "task": scan.id,
    }


async def get_model_info(request: web.Request) -> web.Response:
    """One model at a revision (the default branch unless the path names one)."""
    access = await require_repo(request, Action.VIEW)
    path = repository(request, access)
    rev = request.match_info.get("rev", default_branch())
    readable = access.may(Action.READ_FILES)
    resolve = revision_resolver(request)
    commit_id, files, readme = await run_git(
        request, lambda: _snapshot(resolve, path, rev, readable)
    )
    if readable:
        card, raw = await run_git(
            request, lambda: (parse_card(readme).to_json(), front_matter(readme))
        )
    else:  # the card as indexed from master, which a viewer may see
        stored = await db.get_card(request.app[keys.HUB].db, access.space.id, access.model.id)
        card, raw = (json.loads(stored[1]) if stored else {}), {}
    info = {
        **_summary(access.model, card),
        "sha": shown_commit(rev, commit_id),
        "gated": False if readable else "manual",
        "cardData": card_data(raw, card, access.model.id),
        "spaces": [],
    }
    if readable:
        info["siblings"] = [_sibling(entry, flag(request, "blobs")) for entry in files]
    if flag(request, "securityStatus"):
        info["securityRepoStatus"] = await _security_status(request, access, commit_id)
    return web.json_response(_expand(request, info))


def _filters(request: web.Request) -> dict[str, str]:
    """The search filters of the Hub's `author`, `pipeline_tag` and `filter`, in amphub's terms."""
    filters = {}
    if request.query.get("author"):
        filters["space"] = request.query["author"]
    if request.query.get("pipeline_tag"):
        tag = request.query["pipeline_tag"]
        filters["algorithm"] = canonical_algorithm(tag)[1] or tag
    for value in request.query.getall("filter", []):
        kind, _, name = value.partition(":")
        if name and kind in ("license", "dataset"):
            filters[kind] = name
        elif framework := canonical_framework(value):
            filters["framework"] = framework
        else:
            filters["tag"] = value
    return filters


async def get_models(request: web.Request) -> web.Response:
    """Search the models the caller may retrieve: `search`, `author` (a space) and filters."""
    page = requested_page(request, MODELS_PAGE, MAX_MODELS_PAGE)
    search = ModelSearch(
        text=request.query.get("search", ""),
        filters=_filters(request),
        sort=SORTS.get(request.query.get("sort", ""), "updated"),
        limit=page.limit,
        offset=page.offset,
    )
    found = (await search_models(request.app[keys.HUB], actor(request), search)).result
    with_card = flag(request, "cardData") or flag(request, "full")
    items = []
    for model, card_json in found.models:
        card = json.loads(card_json) if card_json else {}
        item = _summary(model, card)
        if with_card:
            item["cardData"] = card_data({}, card, model.id)
        items.append(_expand(request, item))
    return paged_response(request, items, page, page.offset + page.limit < found.total)


async def get_whoami(request: web.Request) -> web.Response:
    """The signed-in user, with the spaces they may use as organizations."""
    who = actor(request)
    if not who.signed_in:
        raise Unauthorized("send an amphub key as the token (HF_TOKEN)")
    database = request.app[keys.HUB].db
    orgs = []
    for space in await db.list_spaces(database):
        if space_status(request.app[keys.HUB], space) is lifetime.Status.RELEASED:
            continue
        if allowed(who, Action.USE_SPACE, await space_target(database, space, who)):
            orgs.append({"type": "org", "name": space.id, "fullname": space.name})
    return web.json_response(
        {
            "type": "user",
            "id": who.name,
            "name": who.name,
            "fullname": who.name,
            "isPro": False,
            "orgs": orgs,
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "amphub key", "role": "write"},
            },
        }
    )

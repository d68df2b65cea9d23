"""Spaces: the overview table, a space's page with its members, and creating a model."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from amphub.api import models as models_api
from amphub.api import spaces as spaces_api
from amphub.errors import Forbidden
from amphub.http.access import require_space
from amphub.policy import Action
from amphub.policy.matrix import VISIBILITIES
from amphub.services import space_changes
from amphub.web.view import page

SPACE_MODELS = 100  # listed on a space's page; the models page has the rest


async def get_spaces_page(request: web.Request) -> web.Response:
    """The spaces the caller may use: size against quota, models, own usage, lifetime."""
    found = await spaces_api.spaces_answer(request)
    return page(request, "spaces.html", spaces=found["spaces"], q=request.query.get("q", ""))


async def _may_authorize(request: web.Request, space_id: str) -> bool:
    try:
        await require_space(request, space_id, Action.AUTHORIZE_SPACE)
    except Forbidden:
        return False
    return True


async def get_space_page(request: web.Request) -> web.Response:
    """One space; its members for the owner and maintainers, who may change them."""
    space = await require_space(request, request.match_info["space"], Action.USE_SPACE)
    manage = await _may_authorize(request, space.id)
    members = await spaces_api.members_json(request, space) if manage else []
    # The space's models the caller may retrieve, as the models page finds them.
    query = urlencode({"space": space.id, "sort": "name", "per_page": SPACE_MODELS})
    models = await models_api.search_answer(request.clone(rel_url=f"/?{query}"))
    return page(
        request,
        "space.html",
        space=await spaces_api.space_json(request, space),
        models=models,
        manage=manage,
        members=members,
        roles=space_changes.GRANTABLE_SPACE_ROLES,
    )


async def get_new_model(request: web.Request) -> web.Response:
    """The form that creates a model in one of the caller's spaces."""
    found = await spaces_api.spaces_answer(request)
    return page(
        request,
        "new_model.html",
        spaces=found["spaces"],
        chosen=request.query.get("space", ""),
        visibilities=VISIBILITIES,
    )

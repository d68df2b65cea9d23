"""What every page of a model shares: the check that the caller may see it, and its header."""

from __future__ import annotations

from aiohttp import web

from amphub.errors import NotFound, Unauthorized
from amphub.http.access import ModelAccess, actor, require_model
from amphub.http.urls import model_url
from amphub.policy import Action
from amphub.policy.matrix import MODEL_ACTIONS


async def viewable_model(request: web.Request) -> ModelAccess:
    """The model of the address, if the caller may view it.

    A browser is told "not found" for a model it may not see, signed in or not, so a page
    never tells whether a private model exists; the page offers to sign in.
    """
    space_id, model_id = request.match_info["space"], request.match_info["model"]
    try:
        return await require_model(request, space_id, model_id, Action.VIEW)
    except Unauthorized:
        if actor(request).signed_in:
            raise
        raise NotFound(f"no model {space_id}/{model_id}; sign in if it is private") from None


def header(request: web.Request, access: ModelAccess, tab: str, rev: str = "master") -> dict:
    """The model's name, address, the caller's permissions and the tabs to show."""
    space_id, model_id = access.space.id, access.model.id
    return {
        "space": space_id,
        "space_name": access.space.name,
        "id": model_id,
        "name": access.model.name,
        "visibility": access.model.visibility,
        "owner": access.model.owner,
        "url": model_url(request, space_id, model_id),
        "home": f"/{space_id}/{model_id}",
        "permissions": sorted(a.value for a in MODEL_ACTIONS if access.may(a)),
        "tab": tab,
        "rev": rev,
    }

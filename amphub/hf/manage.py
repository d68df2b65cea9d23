"""Managing a repository as huggingface_hub does: its visibility, and deleting it."""

from __future__ import annotations

from aiohttp import web

from amphub.errors import BadRequest, NotOffered
from amphub.hf.access import require_repo
from amphub.http import keys
from amphub.http.access import actor
from amphub.http.body import field, json_object
from amphub.policy import Action
from amphub.services.models import change_model, remove_model

VISIBILITIES = ("private", "internal", "public")


async def put_settings(request: web.Request) -> web.Response:
    """Change the visibility (`visibility`, or the older `private`); amphub has no gating."""
    access = await require_repo(request, Action.EDIT)
    body = await json_object(request)
    if field(body, "gated", object, False) is not False:
        raise NotOffered("amphub has no gated models; make the model private or internal")
    private = field(body, "private", bool, None)
    visibility = field(body, "visibility", str, None)
    if visibility is None and private is not None:
        visibility = "private" if private else "public"
    if visibility is None:
        return web.json_response({})
    if visibility not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}")
    await change_model(
        request.app[keys.HUB],
        access.space.id,
        access.model.id,
        actor(request).name or "",
        visibility=visibility,
    )
    return web.json_response({})


async def delete_repo(request: web.Request) -> web.Response:
    """Delete the model `organization/name`, for those who may delete it."""
    body = await json_object(request)
    if body.get("type") not in (None, "model"):
        raise BadRequest("amphub hosts models only: delete_repo with repo_type='model'")
    space_id = field(body, "organization", str, None)
    if not space_id:
        raise BadRequest("give the repo id as space/model: every amphub model lives in a space")
    access = await require_repo(request, Action.DELETE, space_id, field(body, "name", str))
    await remove_model(request.app[keys.HUB], access.model, actor(request).name or "")
    return web.json_response({})

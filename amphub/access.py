"""The one permission check of every route: load what is asked for and ask the policy.

Something the caller may not view answers as if it did not exist: 401 with the Basic
challenge to an anonymous caller (so that git asks for credentials), 404 to anyone else.
"""

from __future__ import annotations

from aiohttp import web

from amphub import db, keys
from amphub.errors import Forbidden, NotFound, Unauthorized
from amphub.policy import Action, Actor, ModelTarget, SpaceTarget, allowed

SIGN_IN_NEEDED = "sign in with your user name and key"

DENIED = {
    Action.READ_FILES: "you may not read the files of {what}",
    Action.WRITE_FILES: "you may not push to {what}; ask its owner for the developer role",
    Action.EDIT: "you may not change the settings of {what}",
    Action.DELETE: "you may not delete {what}",
    Action.USE_SPACE: "you may not use {what}",
    Action.AUTHORIZE_SPACE: "only owners and maintainers of {what} may do this",
    Action.UNSUBSCRIBE_SPACE: "only the owner of {what} may unsubscribe it",
}


def actor(request: web.Request) -> Actor:
    """Who is asking."""
    return request[keys.ACTOR]


def space_target(space: db.Space) -> SpaceTarget:
    """The policy's view of a space."""
    return SpaceTarget(creator=space.creator)


def model_target(space: db.Space, model: db.Model) -> ModelTarget:
    """The policy's view of a model."""
    return ModelTarget(space_target(space), owner=model.owner, visibility=model.visibility)


def _refuse(who: Actor, action: Action, what: str) -> Exception:
    if not who.signed_in:
        return Unauthorized(SIGN_IN_NEEDED)
    return Forbidden(DENIED.get(action, "you may not do this to {what}").format(what=what))


TOKEN_ONLY_FOR_ITS_MODEL = "a transfer token is good only for the model it was issued for"


def _check_token_scope(request: web.Request, scope: str | None) -> None:
    granted = request.get(keys.TOKEN_SCOPE)
    if granted is not None and granted != scope:
        raise Unauthorized(TOKEN_ONLY_FOR_ITS_MODEL)


def require(request: web.Request, action: Action) -> Actor:
    """The actor, if it may do a global action."""
    _check_token_scope(request, None)
    who = actor(request)
    if not allowed(who, action):
        if not who.signed_in:
            raise Unauthorized(SIGN_IN_NEEDED)
        raise Forbidden(f"you may not {action.value.replace('_', ' ')}")
    return who


async def require_space(request: web.Request, space_id: str, action: Action) -> db.Space:
    """The space, if the caller may do `action` in it; 404 if they may not even use it."""
    _check_token_scope(request, None)
    who = actor(request)
    space = await db.get_space(request.app[keys.DB], space_id)
    target = space_target(space) if space else None
    if space is None or not allowed(who, Action.USE_SPACE, target):
        if not who.signed_in:
            raise Unauthorized(SIGN_IN_NEEDED)
        raise NotFound(f"no space {space_id}")
    if not allowed(who, action, target):
        raise _refuse(who, action, f"space {space_id}")
    return space


async def require_model(
    request: web.Request, space_id: str, model_id: str, action: Action
) -> tuple[db.Space, db.Model]:
    """The space and model, if the caller may do `action` on it; 404 if they may not view it."""
    _check_token_scope(request, f"{space_id}/{model_id}")
    who = actor(request)
    database = request.app[keys.DB]
    space = await db.get_space(database, space_id)
    model = await db.get_model(database, space_id, model_id) if space else None
    target = model_target(space, model) if space and model else None
    if target is None or not allowed(who, Action.VIEW, target):
        if not who.signed_in:
            raise Unauthorized(SIGN_IN_NEEDED)
        raise NotFound(f"no model {space_id}/{model_id}")
    if not allowed(who, action, target):
        raise _refuse(who, action, f"model {space_id}/{model_id}")
    return space, model


def may(request: web.Request, action: Action, space: db.Space, model: db.Model) -> bool:
    """Whether the caller may do `action` on a model already loaded."""
    return allowed(actor(request), action, model_target(space, model))

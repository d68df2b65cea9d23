"""The one permission check of every route: load what is asked for and ask the policy.

Something the caller may not view answers as if it did not exist: 401 with the Basic
challenge to an anonymous caller (so that git asks for credentials), 404 to anyone else.
An expired space refuses what its lifetime forbids with a sentence that says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from amphub import db
from amphub.errors import Forbidden, NotFound, Unauthorized
from amphub.http import keys
from amphub.policy import Action, Actor, ModelTarget, allowed, lifetime
from amphub.services.permissions import model_target, space_target
from amphub.services.spaces import space_lifetime, space_status

SIGN_IN_NEEDED = "sign in with your user name and key"
TOKEN_ONLY_FOR_ITS_MODEL = "a transfer token is good only for the model it was issued for"
TOKEN_ONLY_READS = "a deployment key may only read its model"
READ_ACTIONS = frozenset({Action.VIEW, Action.RETRIEVE, Action.READ_FILES})

DENIED = {
    Action.READ_FILES: "you may not read the files of {what}",
    Action.WRITE_FILES: "you may not push to {what}; ask its owner for the developer role",
    Action.EDIT: "you may not change the settings of {what}",
    Action.DELETE: "you may not delete {what}",
    Action.USE_SPACE: "you may not use {what}",
    Action.CREATE_MODEL: "you may not create models in {what}",
    Action.AUTHORIZE_SPACE: "only owners and maintainers of {what} may do this",
    Action.RENEW_SPACE: "only owners and maintainers of {what} may renew it",
    Action.UNSUBSCRIBE_SPACE: "only the owner of {what} may unsubscribe it",
}


def actor(request: web.Request) -> Actor:
    """Who is asking."""
    return request[keys.ACTOR]


def user_name(who: Actor) -> str:
    """The caller's user name, where the check before let no anonymous caller through."""
    if who.name is None:
        raise Unauthorized(SIGN_IN_NEEDED)
    return who.name


@dataclass(frozen=True)
class ModelAccess:
    """A model the caller passed the check for, and what else they may do with it."""

    space: db.Space
    model: db.Model
    who: Actor
    target: ModelTarget

    def may(self, action: Action) -> bool:
        """Whether the caller may also do `action` on this model."""
        return allowed(self.who, action, self.target)


def _check_token_scope(request: web.Request, scope: str | None, action: Action) -> None:
    token = request.get(keys.TOKEN)
    if token is None:
        return
    if token.scope != scope:
        raise Unauthorized(TOKEN_ONLY_FOR_ITS_MODEL)
    if token.read_only and action not in READ_ACTIONS:
        raise Forbidden(TOKEN_ONLY_READS)


def _hidden(who: Actor, what: str) -> Exception:
    return Unauthorized(SIGN_IN_NEEDED) if not who.signed_in else NotFound(f"no {what}")


def _refuse(who: Actor, action: Action, what: str) -> Exception:
    if not who.signed_in:
        return Unauthorized(SIGN_IN_NEEDED)
    return Forbidden(DENIED.get(action, "you may not do this to {what}").format(what=what))


def _check_lifetime(request: web.Request, space: db.Space, action: Action) -> None:
    now = request.app[keys.HUB].clock()
    reason = lifetime.refusal(space.id, space_lifetime(request.app[keys.HUB], space), now, action)
    if reason:
        raise Forbidden(reason)


def require(request: web.Request, action: Action) -> Actor:
    """The actor, if it may do a global action."""
    _check_token_scope(request, None, action)
    who = actor(request)
    if not allowed(who, action):
        if not who.signed_in:
            raise Unauthorized(SIGN_IN_NEEDED)
        raise Forbidden(f"you may not {action.value.replace('_', ' ')}")
    return who


async def live_space(request: web.Request, space_id: str) -> db.Space | None:
    """The space, unless it does not exist or was released."""
    space = await db.get_space(request.app[keys.HUB].db, space_id)
    if space is None or space_status(request.app[keys.HUB], space) is lifetime.Status.RELEASED:
        return None
    return space


async def require_space(request: web.Request, space_id: str, action: Action) -> db.Space:
    """The space, if the caller may do `action` in it; 404 if they may not even use it."""
    _check_token_scope(request, None, action)
    who = actor(request)
    space = await live_space(request, space_id)
    target = await space_target(request.app[keys.HUB].db, space, who) if space else None
    if space is None or not allowed(who, Action.USE_SPACE, target):
        raise _hidden(who, f"space {space_id}")
    if not allowed(who, action, target):
        raise _refuse(who, action, f"space {space_id}")
    _check_lifetime(request, space, action)
    return space


async def require_model(
    request: web.Request, space_id: str, model_id: str, action: Action
) -> ModelAccess:
    """The model, if the caller may do `action` on it; 404 if they may not view it."""
    _check_token_scope(request, f"{space_id}/{model_id}", action)
    who = actor(request)
    if keys.TOKEN_MODEL in request:  # the token's own model: checked by its scope above
        found = request[keys.TOKEN_MODEL]
    else:
        found = await db.model_with_roles(request.app[keys.HUB].db, space_id, model_id, who.name)
    target = None
    if found and space_status(request.app[keys.HUB], found[0]) is not lifetime.Status.RELEASED:
        space, model, space_role, model_role = found
        target = model_target(space.creator, model, who, space_role, model_role)
    if target is None or not allowed(who, Action.VIEW, target):
        raise _hidden(who, f"model {space_id}/{model_id}")
    if not allowed(who, action, target):
        raise _refuse(who, action, f"model {space_id}/{model_id}")
    _check_lifetime(request, space, action)
    return ModelAccess(space, model, who, target)

"""The permission matrix of the design and `allowed`, the only place that reads roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """Everything a request may ask to do."""

    # global
    MANAGE_USERS = "manage_users"
    CREATE_SPACE = "create_space"
    # on a space
    USE_SPACE = "use_space"
    CREATE_MODEL = "create_model"
    AUTHORIZE_SPACE = "authorize_space"
    RENEW_SPACE = "renew_space"
    UNSUBSCRIBE_SPACE = "unsubscribe_space"
    # on a model
    VIEW = "view"
    RETRIEVE = "retrieve"
    READ_FILES = "read_files"
    WRITE_FILES = "write_files"
    EDIT = "edit"
    DELETE = "delete"


MODEL_ACTIONS = frozenset(
    {
        Action.VIEW,
        Action.RETRIEVE,
        Action.READ_FILES,
        Action.WRITE_FILES,
        Action.EDIT,
        Action.DELETE,
    }
)

MODEL_ROLES: Mapping[str, frozenset[Action]] = {
    "owner": MODEL_ACTIONS,
    "maintainer": MODEL_ACTIONS,
    "developer": frozenset({Action.VIEW, Action.RETRIEVE, Action.READ_FILES, Action.WRITE_FILES}),
    "user": frozenset({Action.VIEW, Action.RETRIEVE, Action.READ_FILES}),
    "visitor": frozenset({Action.VIEW, Action.RETRIEVE}),
}

_USE = frozenset({Action.USE_SPACE, Action.CREATE_MODEL})
_AUTHORIZE = _USE | {Action.AUTHORIZE_SPACE, Action.RENEW_SPACE}

SPACE_ROLES: Mapping[str, frozenset[Action]] = {
    "owner": _AUTHORIZE | {Action.UNSUBSCRIBE_SPACE},
    "maintainer": _AUTHORIZE,
    "user": _USE,
}

# Space owners and maintainers hold every model permission in their space.
SPACE_ROLES_WITH_ALL_MODEL_ACTIONS = frozenset({"owner", "maintainer"})

VISIBILITIES = ("private", "internal", "public")


@dataclass(frozen=True)
class Actor:
    """Who is asking; `name` is None for an anonymous request."""

    name: str | None = None
    admin: bool = False
    creator: bool = False

    @property
    def signed_in(self) -> bool:
        """Whether the request carried a valid key."""
        return self.name is not None


ANONYMOUS = Actor()


@dataclass(frozen=True)
class SpaceTarget:
    """A space as the policy sees it: its creator and the granted roles by user name."""

    creator: str
    roles: Mapping[str, str] = field(default_factory=dict)

    def role_of(self, actor: Actor) -> str | None:
        """The actor's role in the space, if any."""
        if actor.name is None:
            return None
        if actor.name == self.creator:
            return "owner"
        return self.roles.get(actor.name)


@dataclass(frozen=True)
class ModelTarget:
    """A model as the policy sees it: its space, owner, visibility and granted roles."""

    space: SpaceTarget
    owner: str
    visibility: str = "private"
    roles: Mapping[str, str] = field(default_factory=dict)

    def roles_of(self, actor: Actor) -> set[str]:
        """Every model role the actor holds, directly or through visibility."""
        held = set()
        if self.visibility == "public" or (self.visibility == "internal" and actor.signed_in):
            held.add("user")
        if actor.name is None:
            return held
        if actor.name == self.owner:
            held.add("owner")
        if actor.name in self.roles:
            held.add(self.roles[actor.name])
        return held


def allowed(actor: Actor, action: Action, target: SpaceTarget | ModelTarget | None = None) -> bool:
    """Whether `actor` may do `action` on `target` (None for the global actions)."""
    if action is Action.MANAGE_USERS:
        return actor.admin
    if action is Action.CREATE_SPACE:
        return actor.creator
    if actor.admin:
        return True
    if isinstance(target, SpaceTarget):
        return action in SPACE_ROLES.get(target.role_of(actor) or "", frozenset())
    if isinstance(target, ModelTarget) and action in MODEL_ACTIONS:
        if target.space.role_of(actor) in SPACE_ROLES_WITH_ALL_MODEL_ACTIONS:
            return True
        return any(action in MODEL_ROLES[role] for role in target.roles_of(actor))
    return False

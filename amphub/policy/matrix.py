"""The permission matrix of the design and `allowed`, the only place that reads roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """Everything a request may ask to do."""

    # global
    MANAGE_USERS = "manage_users"
    MANAGE_PEERS = "manage_peers"  # zones and deploy targets
    READ_METRICS = "read_metrics"  # /-/metrics
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
# What a visibility grants without membership: (model role, whether signing in is needed).
VISIBILITY_GRANTS: Mapping[str, tuple[str, bool]] = {
    "public": ("user", False),
    "internal": ("user", True),
}


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
        granted = VISIBILITY_GRANTS.get(self.visibility)
        if granted and (actor.signed_in or not granted[1]):
            held.add(granted[0])
        if actor.name is None:
            return held
        if actor.name == self.owner:
            held.add("owner")
        if actor.name in self.roles:
            held.add(self.roles[actor.name])
        return held


def allowed(actor: Actor, action: Action, target: SpaceTarget | ModelTarget | None = None) -> bool:
    """Whether `actor` may do `action` on `target` (None for the global actions)."""
    if action in (Action.MANAGE_USERS, Action.MANAGE_PEERS, Action.READ_METRICS):
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


@dataclass(frozen=True)
class Reach:
    """Which models an actor may do an action on, as conditions a database can test.

    The same rules as `allowed`, read from the same tables, so that a search can filter
    ten thousand models in one query instead of asking `allowed` ten thousand times.
    """

    everything: bool
    visibilities: tuple[str, ...]
    model_owner: bool
    space_owner: bool
    model_roles: tuple[str, ...]
    space_roles: tuple[str, ...]


def reach(actor: Actor, action: Action) -> Reach:
    """The conditions under which `actor` may do `action` on a model."""
    visibilities = tuple(
        visibility
        for visibility, (role, needs_sign_in) in VISIBILITY_GRANTS.items()
        if action in MODEL_ROLES[role] and (actor.signed_in or not needs_sign_in)
    )
    signed_in = actor.signed_in
    return Reach(
        everything=actor.admin,
        visibilities=visibilities,
        model_owner=signed_in and action in MODEL_ROLES["owner"],
        space_owner=signed_in and "owner" in SPACE_ROLES_WITH_ALL_MODEL_ACTIONS,
        model_roles=tuple(
            role
            for role, actions in MODEL_ROLES.items()
            if signed_in and role != "owner" and action in actions
        ),
        space_roles=tuple(
            role
            for role in SPACE_ROLES_WITH_ALL_MODEL_ACTIONS
            if signed_in and role != "owner" and action in MODEL_ACTIONS
        ),
    )

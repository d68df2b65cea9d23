"""`amphub.policy.allowed` against the design's "Who may do what", as a written-out table.

The expected answers are spelled out here from /work/shared/DESIGN.md and API.md, not
derived from amphub.policy.matrix, so that a wrong matrix fails these tests.
"""

from __future__ import annotations

import pytest

from amphub.policy import Action, Actor, ModelTarget, SpaceTarget, allowed

SPACE_OWNER = "sam"  # created the space
MODEL_OWNER = "olive"  # created the model
ME = "ann"  # the actor of each row, unless anonymous or an administrator

GLOBAL_COLUMNS = (
    Action.MANAGE_USERS,
    Action.MANAGE_PEERS,
    Action.CREATE_SPACE,
    Action.READ_METRICS,
)
SPACE_COLUMNS = (
    Action.USE_SPACE,
    Action.CREATE_MODEL,
    Action.AUTHORIZE_SPACE,
    Action.RENEW_SPACE,
    Action.UNSUBSCRIBE_SPACE,
)
MODEL_COLUMNS = (
    Action.VIEW,
    Action.RETRIEVE,
    Action.READ_FILES,
    Action.WRITE_FILES,
    Action.EDIT,
    Action.DELETE,
)


def test_the_tables_cover_every_action():
    columns = GLOBAL_COLUMNS + SPACE_COLUMNS + MODEL_COLUMNS
    assert sorted(columns) == sorted(Action)
    assert len(set(columns)) == len(columns)


def actor(kind: str) -> Actor:
    return {
        "anonymous": Actor(),
        "plain": Actor(ME),
        "creator": Actor(ME, creator=True),
        "admin": Actor(ME, admin=True),
        "admin+creator": Actor(ME, admin=True, creator=True),
    }[kind]


def flags(expected: str, columns: tuple[Action, ...]) -> dict[Action, bool]:
    """'x' allowed, '.' refused, one character per column."""
    assert len(expected) == len(columns)
    return {action: mark == "x" for action, mark in zip(columns, expected, strict=True)}


# Global roles: manage users, manage zones and deploy targets, create space, read metrics.
GLOBAL = [
    ("anonymous", "...."),
    ("plain", "...."),
    ("creator", "..x."),
    ("admin", "xx.x"),  # the administrator grants roles; creating spaces is the creator role
    ("admin+creator", "xxxx"),
]


@pytest.mark.parametrize(("kind", "expected"), GLOBAL)
def test_global_actions(kind, expected):
    who = actor(kind)
    got = {action: allowed(who, action) for action in GLOBAL_COLUMNS}
    assert got == flags(expected, GLOBAL_COLUMNS)


# Space roles: use, create model, authorize others, renew, unsubscribe.
SPACE = [
    ("anonymous", None, "....."),
    ("plain", "owner", "xxxxx"),  # the creator of the space
    ("plain", "maintainer", "xxxx."),
    ("plain", "user", "xx..."),
    ("plain", None, "....."),
    ("creator", None, "....."),  # the global creator role gives nothing in others' spaces
    ("admin", None, "xxxxx"),
]


def space_target(space_role: str | None) -> SpaceTarget:
    if space_role == "owner":
        return SpaceTarget(creator=ME)
    return SpaceTarget(creator=SPACE_OWNER, roles={ME: space_role} if space_role else {})


@pytest.mark.parametrize(("kind", "space_role", "expected"), SPACE)
def test_space_actions(kind, space_role, expected):
    who, target = actor(kind), space_target(space_role)
    got = {action: allowed(who, action, target) for action in SPACE_COLUMNS}
    assert got == flags(expected, SPACE_COLUMNS)


def test_space_role_of_someone_else_gives_nothing():
    target = SpaceTarget(creator=SPACE_OWNER, roles={"zoe": "maintainer"})
    assert not any(allowed(Actor(ME), action, target) for action in SPACE_COLUMNS)


# Models: view, retrieve, read files, write files, edit, delete.
# (actor kind, space role, model role, visibility, expected)
MODEL = [
    # model roles of a signed-in user with no space role
    ("plain", None, "owner", "private", "xxxxxx"),
    ("plain", None, "owner", "internal", "xxxxxx"),
    ("plain", None, "owner", "public", "xxxxxx"),
    ("plain", None, "maintainer", "private", "xxxxxx"),
    ("plain", None, "maintainer", "internal", "xxxxxx"),
    ("plain", None, "maintainer", "public", "xxxxxx"),
    ("plain", None, "developer", "private", "xxxx.."),
    ("plain", None, "developer", "internal", "xxxx.."),
    ("plain", None, "developer", "public", "xxxx.."),
    ("plain", None, "user", "private", "xxx..."),
    ("plain", None, "user", "internal", "xxx..."),
    ("plain", None, "user", "public", "xxx..."),
    ("plain", None, "visitor", "private", "xx...."),
    ("plain", None, "visitor", "internal", "xxx..."),  # internal: every signed-in user is a User
    ("plain", None, "visitor", "public", "xxx..."),
    ("plain", None, None, "private", "......"),
    ("plain", None, None, "internal", "xxx..."),
    ("plain", None, None, "public", "xxx..."),
    # anonymous: only public models, as a User
    ("anonymous", None, None, "private", "......"),
    ("anonymous", None, None, "internal", "......"),
    ("anonymous", None, None, "public", "xxx..."),
    # administrators may do everything
    ("admin", None, None, "private", "xxxxxx"),
    ("admin", None, None, "internal", "xxxxxx"),
    ("admin", None, None, "public", "xxxxxx"),
    # space owners and maintainers hold every model permission in their space
    ("plain", "owner", None, "private", "xxxxxx"),
    ("plain", "owner", None, "internal", "xxxxxx"),
    ("plain", "owner", None, "public", "xxxxxx"),
    ("plain", "maintainer", None, "private", "xxxxxx"),
    ("plain", "maintainer", None, "internal", "xxxxxx"),
    ("plain", "maintainer", None, "public", "xxxxxx"),
    ("plain", "maintainer", "visitor", "private", "xxxxxx"),
    # a space user gets only what a model role or the visibility gives
    ("plain", "user", None, "private", "......"),
    ("plain", "user", None, "internal", "xxx..."),
    ("plain", "user", None, "public", "xxx..."),
    ("plain", "user", "developer", "private", "xxxx.."),
    ("plain", "user", "visitor", "private", "xx...."),
    # the global space-creator role gives nothing on others' models
    ("creator", None, None, "private", "......"),
    ("creator", None, None, "internal", "xxx..."),
]


def model_target(space_role: str | None, model_role: str | None, visibility: str) -> ModelTarget:
    if model_role == "owner":
        return ModelTarget(space_target(space_role), owner=ME, visibility=visibility)
    return ModelTarget(
        space_target(space_role),
        owner=MODEL_OWNER,
        visibility=visibility,
        roles={ME: model_role} if model_role else {},
    )


@pytest.mark.parametrize(("kind", "space_role", "model_role", "visibility", "expected"), MODEL)
def test_model_actions(kind, space_role, model_role, visibility, expected):
    who, target = actor(kind), model_target(space_role, model_role, visibility)
    got = {action: allowed(who, action, target) for action in MODEL_COLUMNS}
    assert got == flags(expected, MODEL_COLUMNS)


def test_model_role_of_someone_else_gives_nothing():
    target = ModelTarget(
        SpaceTarget(creator=SPACE_OWNER, roles={"zoe": "owner"}),
        owner=MODEL_OWNER,
        roles={"zoe": "maintainer"},
    )
    assert not any(allowed(Actor(ME), action, target) for action in MODEL_COLUMNS)
    assert not any(allowed(Actor(), action, target) for action in MODEL_COLUMNS)


def test_default_visibility_is_private():
    target = ModelTarget(SpaceTarget(creator=SPACE_OWNER), owner=MODEL_OWNER)
    assert not any(allowed(Actor(ME), action, target) for action in MODEL_COLUMNS)

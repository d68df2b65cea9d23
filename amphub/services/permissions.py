"""The policy's view of a space or model: its creator, owner, visibility and the caller's roles."""

from __future__ import annotations

from amphub import db
from amphub.policy import Actor, ModelTarget, SpaceTarget


async def space_target(database: db.Database, space: db.Space, who: Actor) -> SpaceTarget:
    """The policy's view of a space, with the caller's granted role."""
    role = await db.space_role(database, space.id, who.name) if who.name else None
    roles = {who.name: role} if who.name and role else {}
    return SpaceTarget(creator=space.creator, roles=roles)


def model_target(
    creator: str, model: db.Model, who: Actor, space_role: str | None, model_role: str | None
) -> ModelTarget:
    """The policy's view of a model, with the roles granted to the caller."""
    return ModelTarget(
        SpaceTarget(creator, {who.name: space_role} if who.name and space_role else {}),
        owner=model.owner,
        visibility=model.visibility,
        roles={who.name: model_role} if who.name and model_role else {},
    )

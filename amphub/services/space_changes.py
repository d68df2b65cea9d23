"""Creating a space and changing it: name, quota, renewal, unsubscription and members."""

from __future__ import annotations

from amphub import db
from amphub.clock import parse_rfc3339, rfc3339
from amphub.errors import BadRequest, Conflict, NotFound
from amphub.policy import lifetime
from amphub.policy.matrix import SPACE_ROLES
from amphub.policy.names import check_display_name, check_new_space_id, space_id_from_name
from amphub.services.hub import Hub
from amphub.services.quota import space_used
from amphub.services.spaces import release_space

MAX_PERIOD = 100
GRANTABLE_SPACE_ROLES = tuple(role for role in SPACE_ROLES if role != "owner")
PREPAID_ONLY = "quota changes and renewal apply to monthly and yearly spaces only"


def check_quota(hub: Hub, quota: int) -> int:
    """A quota the server accepts: a positive multiple of its quota unit."""
    unit = hub.config.quota_unit
    if quota <= 0 or quota % unit:
        raise BadRequest(f"quota must be a positive multiple of the quota unit ({unit} bytes)")
    return quota


def check_period(period: int) -> int:
    """A number of billing periods the server accepts."""
    if not 1 <= period <= MAX_PERIOD:
        raise BadRequest(f"period must be 1 to {MAX_PERIOD}")
    return period


async def create_space(
    hub: Hub, by: str, name: str, quota: int, mode: str, period: int, space_id: str | None
) -> db.Space:
    """A new space owned by `by`; without an id, one is made from the name."""
    name = check_display_name(name)
    check_quota(hub, quota)
    if mode not in lifetime.BILLING_MODES:
        raise BadRequest(f"billing_mode must be one of {', '.join(lifetime.BILLING_MODES)}")
    expires = lifetime.expiration(mode, hub.clock(), check_period(period))
    expires_at = rfc3339(expires) if expires else None
    candidates = (
        [check_new_space_id(space_id)]
        if space_id
        else [space_id_from_name(name), space_id_from_name(name, random_tail=True)]
    )
    for candidate in candidates:
        try:
            return await db.insert_space(hub.db, candidate, name, quota, mode, expires_at, by)
        except Conflict as exc:
            conflict = exc
    raise conflict


async def rename_space(hub: Hub, space: db.Space, name: str, by: str) -> db.Space:
    """The space under its new display name."""
    name = check_display_name(name)
    audit = db.Audit(by, "rename_space", space.id, detail=name)
    return _changed(await db.update_space(hub.db, space.id, audit, name=name), space.id)


async def set_quota(hub: Hub, space: db.Space, quota: int, by: str) -> db.Space:
    """A prepaid space with its new quota, never below what it uses."""
    _prepaid(space)
    check_quota(hub, quota)
    used = await space_used(hub, space.id)
    if quota < used:
        raise BadRequest(f"quota {quota} is below the {used} bytes the space uses")
    audit = db.Audit(by, "change_quota", space.id, detail=f"{space.quota} -> {quota}")
    return _changed(await db.update_space(hub.db, space.id, audit, quota=quota), space.id)


async def renew_space(hub: Hub, space: db.Space, period: int, by: str) -> db.Space:
    """A prepaid space extended by periods, from its expiration or from now if that passed."""
    _prepaid(space)
    now = hub.clock()
    start = max(parse_rfc3339(space.expires_at), now) if space.expires_at else now
    until = lifetime.expiration(space.billing_mode, start, check_period(period))
    if until is None:  # pay-as-you-go, refused by _prepaid
        raise BadRequest(PREPAID_ONLY)
    expires = rfc3339(until)
    audit = db.Audit(by, "renew_space", space.id, detail=f"until {expires}")
    return _changed(await db.update_space(hub.db, space.id, audit, expires_at=expires), space.id)


async def unsubscribe_space(hub: Hub, space: db.Space, by: str) -> None:
    """Release a space now; its models and data are deleted in the background."""
    await db.mark_space_released(hub.db, space.id, db.Audit(by, "unsubscribe_space", space.id))
    hub.background.spawn(release_space(hub, space.id), f"release {space.id}")


async def grant_space_role(hub: Hub, space: db.Space, user: str, role: str, by: str) -> None:
    """Grant or change a member's role; the owner's role is fixed."""
    if role not in GRANTABLE_SPACE_ROLES:
        raise BadRequest(f"role must be one of {', '.join(GRANTABLE_SPACE_ROLES)}")
    if await db.get_user(hub.db, user) is None:
        raise NotFound(f"no user {user}")
    if user == space.creator:
        raise BadRequest("the owner's role is fixed")
    audit = db.Audit(by, "grant_space_role", space.id, target=user, detail=role)
    await db.set_space_member(hub.db, space.id, user, role, audit)


async def revoke_space_role(hub: Hub, space: db.Space, user: str, by: str) -> None:
    """Revoke a member's role."""
    audit = db.Audit(by, "revoke_space_role", space.id, target=user)
    if not await db.delete_space_member(hub.db, space.id, user, audit):
        raise NotFound(f"{user} is not a member of space {space.id}")


def _changed(space: db.Space | None, space_id: str) -> db.Space:
    """The space as a change left it; None only if it was deleted meanwhile."""
    if space is None:
        raise NotFound(f"no space {space_id}")
    return space


def _prepaid(space: db.Space) -> None:
    if space.billing_mode == "pay_as_you_go":
        raise BadRequest(PREPAID_ONLY)

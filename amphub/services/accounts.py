"""Users and their keys: the operations both the API and the offline admin commands use."""

from __future__ import annotations

from amphub import db
from amphub.errors import Forbidden
from amphub.policy.access_keys import hash_key, new_key
from amphub.policy.names import check_user_name

BOOTSTRAP_ADMIN = "admin"


async def create_user(
    database: db.Database, name: str, *, by: str, admin: bool = False, creator: bool = False
) -> tuple[db.User, str]:
    """Create a user with a fresh key; returns the user and the key, which is shown once."""
    key = new_key()
    roles = ", ".join(role for role, held in (("admin", admin), ("creator", creator)) if held)
    audit = db.Audit(by, "create_user", target=name, detail=roles)
    user = await db.insert_user(
        database, check_user_name(name), hash_key(key), admin=admin, creator=creator, audit=audit
    )
    return user, key


async def change_user(
    database: db.Database,
    name: str,
    *,
    by: str,
    admin: bool | None = None,
    creator: bool | None = None,
    disabled: bool | None = None,
) -> db.User | None:
    """Set the given flags of a user; None: no such user.

    Raises:
        Forbidden: a user would take their own administrator role or disable
            themselves; another administrator must, so one is always left to undo it.
    """
    if name == by and admin is False:
        raise Forbidden("you cannot take your own administrator role; another administrator can")
    if name == by and disabled:
        raise Forbidden("you cannot disable yourself; another administrator can")
    flags = {"admin": admin, "creator": creator, "disabled": disabled}
    changed = ", ".join(f"{flag}={value}" for flag, value in flags.items() if value is not None)
    audit = db.Audit(by, "change_user", target=name, detail=changed)
    return await db.update_user_flags(database, name, audit=audit, **flags)


async def regenerate_key(database: db.Database, name: str, *, by: str) -> str | None:
    """Give a user a new key; the old one fails from the next request on. None: no such user."""
    key = new_key()
    audit = db.Audit(by, "regenerate_key", target=name)
    return key if await db.set_user_key_hash(database, name, hash_key(key), audit) else None


async def ensure_admin(database: db.Database) -> str | None:
    """On an empty database, create the administrator and return its key; else None."""
    if await db.count_users(database):
        return None
    _, key = await create_user(
        database, BOOTSTRAP_ADMIN, by="amphub serve", admin=True, creator=True
    )
    return key

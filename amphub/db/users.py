"""Users and their key hashes."""

from __future__ import annotations

from amphub.db.core import (
    Audit,
    Conflict,
    Database,
    IntegrityError,
    User,
    fetch_all,
    look_up_one,
    row_to,
)

__all__ = [
    "count_users",
    "insert_user",
    "get_user",
    "get_user_by_key_hash",
    "list_users",
    "set_user_key_hash",
    "update_user_flags",
]


_COLUMNS = "name, key_hash, admin, creator, disabled, created_at"


# Users


async def count_users(db: Database, *, name_contains: str = "") -> int:
    """How many users exist, or have `name_contains` in their name."""
    rows = await fetch_all(db, "SELECT count(*) FROM users WHERE instr(name, ?) > 0", name_contains)
    return rows[0][0]


async def insert_user(
    db: Database,
    name: str,
    key_hash: str,
    *,
    admin: bool = False,
    creator: bool = False,
    audit: Audit | None = None,
) -> User:
    """Create a user; `Conflict` if the name is taken."""
    now = db.now()
    try:
        async with db.transaction(audit) as conn:
            await conn.execute(
                "INSERT INTO users (name, key_hash, admin, creator, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, key_hash, admin, creator, now),
            )
    except IntegrityError:
        raise Conflict(f"user {name} exists already") from None
    return User(
        name=name, key_hash=key_hash, admin=admin, creator=creator, disabled=False, created_at=now
    )


async def get_user(db: Database, name: str) -> User | None:
    """The user with this name."""
    row = await look_up_one(db, f"SELECT {_COLUMNS} FROM users WHERE name = ?", name)
    return row_to(User, row) if row else None


async def get_user_by_key_hash(db: Database, key_hash: str) -> User | None:
    """The user whose key hashes to `key_hash`."""
    row = await look_up_one(db, f"SELECT {_COLUMNS} FROM users WHERE key_hash = ?", key_hash)
    return row_to(User, row) if row else None


async def list_users(
    db: Database, *, name_contains: str = "", limit: int | None = None, offset: int = 0
) -> list[User]:
    """Users by name: every one, or a page of those with `name_contains` in their name."""
    page = "" if limit is None else f" LIMIT {limit:d} OFFSET {offset:d}"
    rows = await fetch_all(
        db,
        f"SELECT {_COLUMNS} FROM users WHERE instr(name, ?) > 0 ORDER BY name{page}",
        name_contains,
    )
    return [row_to(User, row) for row in rows]


async def set_user_key_hash(
    db: Database, name: str, key_hash: str, audit: Audit | None = None
) -> bool:
    """Replace a user's key; False if there is no such user."""
    if await get_user(db, name) is None:
        return False
    async with db.transaction(audit) as conn:
        cursor = await conn.execute(
            "UPDATE users SET key_hash = ? WHERE name = ?", (key_hash, name)
        )
    return cursor.rowcount == 1


async def update_user_flags(
    db: Database,
    name: str,
    *,
    admin: bool | None = None,
    creator: bool | None = None,
    disabled: bool | None = None,
    audit: Audit | None = None,
) -> User | None:
    """Change the given flags of a user and return it; None if there is no such user."""
    if await get_user(db, name) is None:
        return None
    async with db.transaction(audit) as conn:
        await conn.execute(
            "UPDATE users SET admin = coalesce(?, admin), creator = coalesce(?, creator),"
            " disabled = coalesce(?, disabled) WHERE name = ?",
            (admin, creator, disabled, name),
        )
    return await get_user(db, name)

"""Roles granted in spaces and models."""

from __future__ import annotations

from amphub.db.core import (
    Audit,
    Database,
    Model,
    Row,
    Space,
    User,
    fetch_all,
    fetch_one,
    look_up_one,
    row_to,
)

__all__ = [
    "ModelWithRoles",
    "model_with_roles",
    "user_with_model",
    "space_role",
    "model_role",
    "user_space_roles",
    "user_model_roles",
    "list_space_members",
    "list_model_members",
    "set_space_member",
    "delete_space_member",
    "set_model_member",
    "delete_model_member",
]


class _NothingToRevoke(Exception):
    """Rolls back the audit entry of a revocation that changed nothing."""


async def space_role(db: Database, space_id: str, user: str) -> str | None:
    """The role granted to a user in a space."""
    row = await fetch_one(
        db, "SELECT role FROM space_members WHERE space_id = ? AND user = ?", space_id, user
    )
    return row[0] if row else None


async def model_role(db: Database, space_id: str, model_id: str, user: str) -> str | None:
    """The role granted to a user on a model."""
    row = await fetch_one(
        db,
        "SELECT role FROM model_members WHERE space_id = ? AND model_id = ? AND user = ?",
        space_id,
        model_id,
        user,
    )
    return row[0] if row else None


async def user_space_roles(db: Database, user: str) -> dict[str, str]:
    """Every space role of a user, by space id."""
    rows = await fetch_all(db, "SELECT space_id, role FROM space_members WHERE user = ?", user)
    return {row[0]: row[1] for row in rows}


async def user_model_roles(db: Database, user: str) -> dict[tuple[str, str], str]:
    """Every model role of a user, by (space id, model id)."""
    rows = await fetch_all(
        db, "SELECT space_id, model_id, role FROM model_members WHERE user = ?", user
    )
    return {(row[0], row[1]): row[2] for row in rows}


async def list_space_members(db: Database, space_id: str) -> list[tuple[str, str]]:
    """(user, role) granted in a space, by user."""
    rows = await fetch_all(
        db, "SELECT user, role FROM space_members WHERE space_id = ? ORDER BY user", space_id
    )
    return [(row[0], row[1]) for row in rows]


async def list_model_members(db: Database, space_id: str, model_id: str) -> list[tuple[str, str]]:
    """(user, role) granted on a model, by user."""
    rows = await fetch_all(
        db,
        "SELECT user, role FROM model_members WHERE space_id = ? AND model_id = ? ORDER BY user",
        space_id,
        model_id,
    )
    return [(row[0], row[1]) for row in rows]


async def set_space_member(db: Database, space_id: str, user: str, role: str, audit: Audit) -> None:
    """Grant or change a user's role in a space."""
    async with db.transaction(audit) as conn:
        await conn.execute(
            "INSERT INTO space_members (space_id, user, role) VALUES (?, ?, ?)"
            " ON CONFLICT (space_id, user) DO UPDATE SET role = excluded.role",
            (space_id, user, role),
        )


async def delete_space_member(db: Database, space_id: str, user: str, audit: Audit) -> bool:
    """Revoke a user's role in a space; False if there was none."""
    try:
        async with db.transaction(audit) as conn:
            cursor = await conn.execute(
                "DELETE FROM space_members WHERE space_id = ? AND user = ?", (space_id, user)
            )
            if cursor.rowcount == 0:
                raise _NothingToRevoke
    except _NothingToRevoke:
        return False
    return True


async def set_model_member(
    db: Database, space_id: str, model_id: str, user: str, role: str, audit: Audit
) -> None:
    """Grant or change a user's role on a model."""
    async with db.transaction(audit) as conn:
        await conn.execute(
            "INSERT INTO model_members (space_id, model_id, user, role) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (space_id, model_id, user) DO UPDATE SET role = excluded.role",
            (space_id, model_id, user, role),
        )


async def delete_model_member(
    db: Database, space_id: str, model_id: str, user: str, audit: Audit
) -> bool:
    """Revoke a user's role on a model; False if there was none."""
    try:
        async with db.transaction(audit) as conn:
            cursor = await conn.execute(
                "DELETE FROM model_members WHERE space_id = ? AND model_id = ? AND user = ?",
                (space_id, model_id, user),
            )
            if cursor.rowcount == 0:
                raise _NothingToRevoke
    except _NothingToRevoke:
        return False
    return True


# A model, its space, and the caller's roles in the space and in the model.
ModelWithRoles = tuple[Space, Model, str | None, str | None]

# Spaces, models and users share column names: each table's come with a prefix. The roles
# come first: a row finds a column by name by trying each from the first.
_MODEL_WITH_ROLES = (
    "sm.role AS space_role, mm.role AS model_role,"
    " s.id AS s_id, s.name AS s_name, s.quota AS s_quota, s.billing_mode AS s_billing_mode,"
    " s.expires_at AS s_expires_at, s.creator AS s_creator, s.created_at AS s_created_at,"
    " s.released_at AS s_released_at, s.purged_at AS s_purged_at,"
    " m.space_id AS m_space_id, m.id AS m_id, m.name AS m_name, m.visibility AS m_visibility,"
    " m.owner AS m_owner, m.created_at AS m_created_at, m.updated_at AS m_updated_at"
)
# Joined to `models m`, with the caller's name as `{user}`.
_ROLES_OF = (
    " LEFT JOIN space_members sm ON sm.space_id = s.id AND sm.user = {user}"
    " LEFT JOIN model_members mm ON mm.space_id = m.space_id AND mm.model_id = m.id"
    " AND mm.user = {user}"
)


def _model_with_roles(row: Row) -> ModelWithRoles:
    return (
        row_to(Space, row, "s_"),
        row_to(Model, row, "m_"),
        row["space_role"],
        row["model_role"],
    )


async def model_with_roles(
    db: Database, space_id: str, model_id: str, user: str | None
) -> ModelWithRoles | None:
    """A model, its space, and the user's roles in both, in one read (every request needs them)."""
    row = await look_up_one(
        db,
        f"SELECT {_MODEL_WITH_ROLES} FROM models m JOIN spaces s ON s.id = m.space_id"
        + _ROLES_OF.format(user="?")
        + " WHERE m.space_id = ? AND m.id = ?",
        user,
        user,
        space_id,
        model_id,
    )
    return _model_with_roles(row) if row else None


async def user_with_model(
    db: Database, name: str, space_id: str, model_id: str
) -> tuple[User, ModelWithRoles | None] | None:
    """A user, and a model with the user's roles (None if it does not exist), in one read.

    For a transfer token, good for one model only: its requests need both, and a read on
    the loop's thread costs more than its microseconds while other threads want the GIL.
    """
    row = await look_up_one(
        db,
        f"SELECT {_MODEL_WITH_ROLES}, u.name AS u_name, u.key_hash AS u_key_hash,"
        " u.admin AS u_admin, u.creator AS u_creator, u.disabled AS u_disabled,"
        " u.created_at AS u_created_at FROM users u"
        " LEFT JOIN models m ON m.space_id = ? AND m.id = ?"
        " LEFT JOIN spaces s ON s.id = m.space_id"
        + _ROLES_OF.format(user="u.name")
        + " WHERE u.name = ?",
        space_id,
        model_id,
        name,
    )
    if row is None:
        return None
    user = row_to(User, row, "u_")
    return user, _model_with_roles(row) if row["s_id"] is not None else None

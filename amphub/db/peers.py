"""Zones (peer servers) and deploy targets (inference services), kept by administrators."""

from __future__ import annotations

from amphub.db.core import (
    Audit,
    Conflict,
    Database,
    DeployTarget,
    IntegrityError,
    Zone,
    fetch_all,
    fetch_one,
    row_to,
)

__all__ = [
    "insert_zone",
    "get_zone",
    "list_zones",
    "delete_zone",
    "insert_deploy_target",
    "get_deploy_target",
    "list_deploy_targets",
    "delete_deploy_target",
]

_ZONE_COLUMNS = "name, url, user, sealed_key, created_at"
_TARGET_COLUMNS = "name, url, sealed_secret, created_at"


async def insert_zone(
    db: Database, name: str, url: str, user: str, sealed_key: bytes, audit: Audit
) -> Zone:
    """Register a zone; `Conflict` if the name is taken."""
    now = db.now()
    try:
        async with db.transaction(audit) as conn:
            await conn.execute(
                "INSERT INTO zones (name, url, user, sealed_key, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, url, user, sealed_key, now),
            )
    except IntegrityError:
        raise Conflict(f"zone {name} exists already") from None
    return Zone(name=name, url=url, user=user, sealed_key=sealed_key, created_at=now)


async def get_zone(db: Database, name: str) -> Zone | None:
    """The zone with this name."""
    row = await fetch_one(db, f"SELECT {_ZONE_COLUMNS} FROM zones WHERE name = ?", name)
    return row_to(Zone, row) if row else None


async def list_zones(db: Database) -> list[Zone]:
    """Every zone, by name."""
    rows = await fetch_all(db, f"SELECT {_ZONE_COLUMNS} FROM zones ORDER BY name")
    return [row_to(Zone, row) for row in rows]


async def delete_zone(db: Database, name: str, audit: Audit) -> bool:
    """Forget a zone; False if there was none. Its replicas' records stay."""
    async with db.transaction(audit) as conn:
        cursor = await conn.execute("DELETE FROM zones WHERE name = ?", (name,))
    return cursor.rowcount > 0


async def insert_deploy_target(
    db: Database, name: str, url: str, sealed_secret: bytes, audit: Audit
) -> DeployTarget:
    """Register a deploy target; `Conflict` if the name is taken."""
    now = db.now()
    try:
        async with db.transaction(audit) as conn:
            await conn.execute(
                "INSERT INTO deploy_targets (name, url, sealed_secret, created_at)"
                " VALUES (?, ?, ?, ?)",
                (name, url, sealed_secret, now),
            )
    except IntegrityError:
        raise Conflict(f"deploy target {name} exists already") from None
    return DeployTarget(name=name, url=url, sealed_secret=sealed_secret, created_at=now)


async def get_deploy_target(db: Database, name: str) -> DeployTarget | None:
    """The deploy target with this name."""
    row = await fetch_one(db, f"SELECT {_TARGET_COLUMNS} FROM deploy_targets WHERE name = ?", name)
    return row_to(DeployTarget, row) if row else None


async def list_deploy_targets(db: Database) -> list[DeployTarget]:
    """Every deploy target, by name."""
    rows = await fetch_all(db, f"SELECT {_TARGET_COLUMNS} FROM deploy_targets ORDER BY name")
    return [row_to(DeployTarget, row) for row in rows]


async def delete_deploy_target(db: Database, name: str, audit: Audit) -> bool:
    """Forget a deploy target; False if there was none."""
    async with db.transaction(audit) as conn:
        cursor = await conn.execute("DELETE FROM deploy_targets WHERE name = ?", (name,))
    return cursor.rowcount > 0

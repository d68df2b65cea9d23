"""What administrators register by name: zones, deploy targets and upstreams."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
from amphub.db.upstreams import Upstream

__all__ = ["Registry", "ZONES", "DEPLOY_TARGETS", "UPSTREAMS"]

Entry = TypeVar("Entry", Zone, DeployTarget, Upstream)


@dataclass(frozen=True)
class Registry(Generic[Entry]):
    """A table of entries of one row class, each with a unique `name` and a `created_at`."""

    table: str
    row: type[Entry]
    noun: str  # one entry, in sentences

    @property
    def _columns(self) -> list[str]:
        return [field.name for field in dataclasses.fields(self.row)]

    async def add(self, db: Database, audit: Audit, **values: Any) -> Entry:
        """Register an entry (every field but `created_at`); `Conflict` if the name is taken."""
        entry = self.row(**values, created_at=db.now())
        columns = self._columns
        try:
            async with db.transaction(audit) as conn:
                await conn.execute(
                    f"INSERT INTO {self.table} ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    dataclasses.astuple(entry),
                )
        except IntegrityError:
            raise Conflict(f"{self.noun} {entry.name} exists already") from None
        return entry

    async def get(self, db: Database, name: str) -> Entry | None:
        """The entry with this name."""
        row = await fetch_one(
            db, f"SELECT {', '.join(self._columns)} FROM {self.table} WHERE name = ?", name
        )
        return row_to(self.row, row) if row else None

    async def all(self, db: Database) -> list[Entry]:
        """Every entry, by name."""
        rows = await fetch_all(
            db, f"SELECT {', '.join(self._columns)} FROM {self.table} ORDER BY name"
        )
        return [row_to(self.row, row) for row in rows]

    async def remove(self, db: Database, name: str, audit: Audit) -> bool:
        """Forget an entry; False if there was none. What refers to it by name stays."""
        async with db.transaction(audit) as conn:
            cursor = await conn.execute(f"DELETE FROM {self.table} WHERE name = ?", (name,))
        return cursor.rowcount > 0


ZONES = Registry("zones", Zone, "zone")
DEPLOY_TARGETS = Registry("deploy_targets", DeployTarget, "deploy target")
UPSTREAMS = Registry("upstreams", Upstream, "upstream")

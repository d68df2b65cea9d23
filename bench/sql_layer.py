"""Our thin SQL layer against SQLAlchemy Core, per call, on the hot paths (issue 20).

The issue asks to keep hand-written SQL only where it is measurably faster on the hot
paths. amphub runs its portable SQL through `amphub.db` (on SQLite: `look_up` and `write`
on the event loop's own thread; on PostgreSQL: a psycopg 3 pool). This script times the
same statements through SQLAlchemy's async engine (aiosqlite; psycopg async), each as
text() and as a Core expression, on one database of amphub's schema:

- `look_up` of a user by key hash (every request with a key);
- `look_up` of a model with its space and the caller's roles (every request on a model);
- `write` of one object link (every LFS upload);
- a transaction of 2 statements (an audit entry and a model's update time).

SQLAlchemy runs the three single statements in autocommit (as ours do), the transaction
in its default mode.

Each is called `--calls` times in a row, one at a time (as one request makes them); the
median of 5 rounds of µs per call is printed, with the ratio SQLAlchemy / ours.

SQLAlchemy is installed for this bench only, never a dependency of amphub:
    .venv/bin/pip install 'sqlalchemy[asyncio]'

Run: python bench/sql_layer.py [--database sqlite|postgresql|URL] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import DATABASE_HELP, databases
from sqlalchemy import and_, event, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import column, table

from amphub import db
from amphub.db.core import look_up_one
from amphub.db.lfs import link_objects
from amphub.services import accounts

SPACE, MODEL = "bench", "bert"

USER_SQL = (
    "SELECT name, key_hash, admin, creator, disabled, created_at FROM users WHERE key_hash = ?"
)
MODEL_SQL = (
    "SELECT sm.role AS space_role, mm.role AS model_role, s.id AS s_id, s.name AS s_name,"
    " s.quota AS s_quota, s.billing_mode AS s_billing_mode, s.expires_at AS s_expires_at,"
    " s.creator AS s_creator, s.created_at AS s_created_at, s.released_at AS s_released_at,"
    " s.purged_at AS s_purged_at, m.space_id AS m_space_id, m.id AS m_id, m.name AS m_name,"
    " m.visibility AS m_visibility, m.owner AS m_owner, m.created_at AS m_created_at,"
    " m.updated_at AS m_updated_at FROM models m JOIN spaces s ON s.id = m.space_id"
    ' LEFT JOIN space_members sm ON sm.space_id = s.id AND sm."user" = ?'
    " LEFT JOIN model_members mm ON mm.space_id = m.space_id AND mm.model_id = m.id"
    ' AND mm."user" = ? WHERE m.space_id = ? AND m.id = ?'
)
AUDIT_SQL = (
    "INSERT INTO audit (at, actor, action, space_id, model_id, target, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
TOUCH_SQL = "UPDATE models SET updated_at = ? WHERE space_id = ? AND id = ?"
LINK_SQL = "INSERT INTO object_links (space_id, model_id, oid, size, at) VALUES (?, ?, ?, ?, ?)"


def named(sql: str, *names: str) -> str:
    """`sql` with its `?` replaced by `:name`, in order, for text()."""
    for name in names:
        sql = sql.replace("?", f":{name}", 1)
    return sql


users = table("users", *map(column, ["name", "key_hash", "admin", "creator", "disabled"]))
spaces = table("spaces", *map(column, ["id", "name", "quota", "billing_mode", "creator"]))
models = table("models", *map(column, ["space_id", "id", "name", "visibility", "updated_at"]))
space_members = table("space_members", *map(column, ["space_id", "user", "role"]))
model_members = table("model_members", *map(column, ["space_id", "model_id", "user", "role"]))
object_links = table("object_links", *map(column, ["space_id", "model_id", "oid", "size", "at"]))
audit = table(
    "audit", *map(column, ["at", "actor", "action", "space_id", "model_id", "target", "detail"])
)


def model_select(user: str):
    sm, mm, s, m = space_members, model_members, spaces, models
    joined = (
        m.join(s, s.c.id == m.c.space_id)
        .outerjoin(sm, and_(sm.c.space_id == s.c.id, sm.c.user == user))
        .outerjoin(
            mm, and_(mm.c.space_id == m.c.space_id, mm.c.model_id == m.c.id, mm.c.user == user)
        )
    )
    columns = [sm.c.role.label("space_role"), mm.c.role.label("model_role")]
    columns += [c.label(f"s_{c.name}") for c in s.c] + [c.label(f"m_{c.name}") for c in m.c]
    return select(*columns).select_from(joined).where(m.c.space_id == SPACE, m.c.id == MODEL)


class Calls:
    """The four hot paths, each as a coroutine function of a call number."""

    def __init__(self, database: db.Database, engine: AsyncEngine, key_hash: str) -> None:
        self.database = database
        self.engine = engine
        # One statement needs no BEGIN and COMMIT (nor a ROLLBACK when the read ends), as
        # ours: SQLAlchemy's default would add them.
        self.single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.key_hash = key_hash

    # ours
    async def ours_user(self, n: int) -> None:
        assert await look_up_one(self.database, USER_SQL, self.key_hash)

    async def ours_model(self, n: int) -> None:
        assert await look_up_one(self.database, MODEL_SQL, "reader", "reader", SPACE, MODEL)

    async def ours_link(self, n: int) -> None:
        await link_objects(self.database, SPACE, MODEL, {f"{n:064x}": n})

    async def ours_transaction(self, n: int) -> None:
        now = self.database.now()
        async with self.database.transaction() as conn:
            await conn.execute(AUDIT_SQL, (now, "admin", "bench", SPACE, MODEL, "", ""))
            await conn.execute(TOUCH_SQL, (now, SPACE, MODEL))

    # SQLAlchemy, text()
    async def text_user(self, n: int) -> None:
        async with self.single.connect() as conn:
            sql = text(named(USER_SQL, "k"))
            assert (await conn.execute(sql, {"k": self.key_hash})).first()

    async def text_model(self, n: int) -> None:
        async with self.single.connect() as conn:
            sql = text(named(MODEL_SQL, "u", "u", "s", "m"))
            assert (await conn.execute(sql, {"u": "reader", "s": SPACE, "m": MODEL})).first()

    async def text_link(self, n: int) -> None:
        async with self.single.connect() as conn:
            sql = text(named(LINK_SQL, "s", "m", "o", "z", "at"))
            values = {"s": SPACE, "m": MODEL, "o": f"{n:064x}", "z": n, "at": self.database.now()}
            await conn.execute(sql, values)

    async def text_transaction(self, n: int) -> None:
        now = self.database.now()
        async with self.engine.begin() as conn:
            sql = text(named(AUDIT_SQL, "at", "actor", "action", "s", "m", "t", "d"))
            values = {"actor": "admin", "action": "bench", "t": "", "d": ""}
            await conn.execute(sql, {"at": now, "s": SPACE, "m": MODEL, **values})
            touch = text(named(TOUCH_SQL, "at", "s", "m"))
            await conn.execute(touch, {"at": now, "s": SPACE, "m": MODEL})

    # SQLAlchemy Core expressions
    async def core_user(self, n: int) -> None:
        async with self.single.connect() as conn:
            query = select(users).where(users.c.key_hash == self.key_hash)
            assert (await conn.execute(query)).first()

    async def core_model(self, n: int) -> None:
        async with self.single.connect() as conn:
            assert (await conn.execute(model_select("reader"))).first()

    async def core_link(self, n: int) -> None:
        async with self.single.connect() as conn:
            values = {"space_id": SPACE, "model_id": MODEL, "oid": f"{n:064x}", "size": n}
            await conn.execute(insert(object_links).values(**values, at=self.database.now()))

    async def core_transaction(self, n: int) -> None:
        now = self.database.now()
        async with self.engine.begin() as conn:
            entry = {"at": now, "actor": "admin", "action": "bench", "target": "", "detail": ""}
            await conn.execute(insert(audit).values(**entry, space_id=SPACE, model_id=MODEL))
            where = and_(models.c.space_id == SPACE, models.c.id == MODEL)
            await conn.execute(update(models).where(where).values(updated_at=now))


async def per_call(call: Callable[[int], Awaitable[None]], start: int, count: int) -> float:
    began = time.perf_counter()
    for n in range(start, start + count):
        await call(n)
    return (time.perf_counter() - began) / count


def sqlalchemy_engine(target: Path | str) -> AsyncEngine:
    if isinstance(target, Path):
        engine = create_async_engine(f"sqlite+aiosqlite:///{target}")

        @event.listens_for(engine.sync_engine, "connect")
        def as_amphub(conn, record) -> None:  # the same settings as amphub's connections
            for pragma in ("foreign_keys=ON", "busy_timeout=10000", "synchronous=NORMAL"):
                conn.execute(f"PRAGMA {pragma}")

        return engine
    url = target.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_async_engine(url, pool_size=20)


async def measure(target: Path | str, calls: int) -> None:
    async with db.opened(target) as database:
        user, _ = await accounts.create_user(database, "reader", by="bench")
        await db.insert_space(database, SPACE, "Bench", 10**12, "pay_as_you_go", None, "reader")
        await db.insert_model(database, SPACE, MODEL, "BERT", "private", "reader")
        engine = sqlalchemy_engine(target)
        try:
            hot = Calls(database, engine, user.key_hash)
            serial = 0
            print(f"{'µs per call':28} {'ours':>8} {'SA text()':>10} {'SA Core':>8}  ratio")
            for path in ("user", "model", "link", "transaction"):
                kinds = {k: getattr(hot, f"{k}_{path}") for k in ("ours", "text", "core")}
                rounds: dict[str, list[float]] = {k: [] for k in kinds}
                for _ in range(5):
                    for kind, call in kinds.items():  # interleaved, so drift hits all three
                        rounds[kind].append(await per_call(call, serial, calls))
                        serial += calls
                us = {k: statistics.median(v) * 1e6 for k, v in rounds.items()}
                print(
                    f"{path:28} {us['ours']:8.1f} {us['text']:10.1f} {us['core']:8.1f}"
                    f"  SA/ours {us['text'] / us['ours']:.1f}× (text), "
                    f"{us['core'] / us['ours']:.1f}× (Core)"
                )
        finally:
            await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", help=DATABASE_HELP)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with databases(args.database) as new_database, tempfile.TemporaryDirectory() as tmp:
        target = new_database()
        print(f"database: {target.split('@')[-1]}")
        await measure(Path(tmp) / "amphub.db" if target == "sqlite" else target, args.calls)


if __name__ == "__main__":
    asyncio.run(main())

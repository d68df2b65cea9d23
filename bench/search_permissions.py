"""Search over 10,000 models as an administrator and as a user who may retrieve 1,000.

Goal (issue: spaces and roles): the user's search is within 1.5x of the administrator's.
Run: python bench/search_permissions.py [--models 10000] [--granted 1000] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from amphub import db
from amphub.config import Config
from amphub.server.app import bootstrap, create_app
from amphub.services import accounts


async def populate(config: Config, models: int, granted: int) -> dict[str, str]:
    admin_key = await bootstrap(config)
    async with db.opened(config.db_path) as database:
        _, user_key = await accounts.create_user(database, "reader", by="bench")
        await db.insert_space(database, "big", "Big", 10 * 1024**3, "pay_as_you_go", None, "admin")
        now = database.now()
        async with database.transaction() as conn:
            await conn.executemany(
                "INSERT INTO models (space_id, id, name, visibility, owner, created_at, updated_at)"
                " VALUES ('big', ?, ?, 'private', 'admin', ?, ?)",
                [(f"model-{i:05d}", f"Model {i}", now, now) for i in range(models)],
            )
            step = models // granted
            await conn.executemany(
                "INSERT INTO model_members (space_id, model_id, user, role)"
                " VALUES ('big', ?, 'reader', 'user')",
                [(f"model-{i:05d}",) for i in range(0, models, step)][:granted],
            )
    return {"admin": admin_key, "reader": user_key}


async def time_search(
    session: aiohttp.ClientSession, url: str, key: str, runs: int
) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {key}"}
    times = []
    total = 0
    for _ in range(runs):
        start = time.perf_counter()
        async with session.get(url + "/api/v1/models?q=model&per_page=20", headers=headers) as resp:
            body = await resp.json()
        times.append(time.perf_counter() - start)
        total = body["total"]
    return statistics.median(times), total


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--granted", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp))
        keys = await populate(config, args.models, args.granted)
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        try:
            url = str(server.make_url("")).rstrip("/")
            async with aiohttp.ClientSession() as session:
                admin, admin_total = await time_search(session, url, keys["admin"], args.runs)
                user, user_total = await time_search(session, url, keys["reader"], args.runs)
        finally:
            await server.close()
    runs = args.runs
    print(f"administrator: {admin * 1000:.1f} ms median of {runs} searches, {admin_total} models")
    print(f"user:          {user * 1000:.1f} ms median of {runs} searches, {user_total} models")
    print(f"ratio user / administrator: {user / admin:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    asyncio.run(main())

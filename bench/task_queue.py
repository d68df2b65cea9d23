"""What the task queue's leases cost on SQLite (issue 20).

Every worker of every node claims once a second while idle, and each node renews the
leases of the tasks it runs every third of `task_lease_seconds`. A claim now also closes
lapsed tasks that were canceled or tried too often and may take a lapsed task over: three
statements where there was one.

Prints, over a history of finished tasks and a few tasks other nodes run: the p50/p99 of
an idle claim (nothing queued) beside the claim before leases (its one statement), the
tasks a second one worker gets through (claim, then finish), and the p50 of one lease
renewal for 2 and for 256 running tasks.

Run: python bench/task_queue.py [--history 10000] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amphub import db  # noqa: E402 - after the path is set
from amphub.clock import rfc3339  # noqa: E402

MAX_ATTEMPTS = 3


def lease(seconds: float = 60) -> tuple[str, str]:
    now = datetime.now(UTC)
    return rfc3339(now), rfc3339(now + timedelta(seconds=seconds))


async def timed(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


def ms(times: list[float], share: float) -> float:
    return 1000 * statistics.quantiles(times, n=100, method="inclusive")[int(share * 100) - 1]


async def fill(database: db.Database, finished: int, running: int) -> None:
    """A history of finished tasks, and tasks with live leases on another node."""
    async with database.transaction() as conn:
        await conn.executemany(
            "INSERT INTO tasks (kind, space_id, model_id, status, created_by, created_at)"
            " VALUES ('scan', 'team', 'm1', 'succeeded', 'admin', ?)",
            [(database.now(),)] * finished,
        )
    for _ in range(running):
        await db.insert_task(database, "scan", "team", "m1", None, None, "{}", "admin")
        assert await db.claim_task(database, "other", *lease(), MAX_ATTEMPTS) is not None


async def claim_before_leases(database: db.Database) -> None:
    """The claim as it was: one statement, queued tasks only."""
    async with database.transaction() as conn:
        await conn.execute(
            "UPDATE tasks SET status = 'running', started_at = ?, attempts = attempts + 1,"
            " node = ? WHERE id = (SELECT id FROM tasks WHERE status = 'queued' ORDER BY id"
            " LIMIT 1) RETURNING id",
            (database.now(), "here"),
        )


async def main(history: int, tasks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with db.opened(Path(tmp) / "amphub.db") as database:
            await fill(database, history, running=4)

            async def claim() -> db.Task | None:
                return await db.claim_task(database, "here", *lease(), MAX_ATTEMPTS)

            idle = await timed(claim, 2000)
            before = await timed(lambda: claim_before_leases(database), 2000)
            print(f"idle claim over {history} finished tasks, 4 running elsewhere:")
            print(f"  with leases   p50 {ms(idle, 0.5):.3f} ms  p99 {ms(idle, 0.99):.3f} ms")
            print(f"  before leases p50 {ms(before, 0.5):.3f} ms  p99 {ms(before, 0.99):.3f} ms")
            print(f"  ratio (p50)   {statistics.median(idle) / statistics.median(before):.2f}")

            for _ in range(tasks):
                await db.insert_task(database, "scan", "team", "m1", None, None, "{}", "admin")
            started = time.perf_counter()
            while (task := await claim()) is not None:
                await db.finish_task(database, task, "succeeded", "done", "{}")
            took = time.perf_counter() - started
            print(f"claim + finish, one worker: {tasks / took:.0f} tasks/s")

            for running in (2, 256):
                ids = []
                for _ in range(running):
                    queued = await db.insert_task(
                        database, "scan", "team", "m1", None, None, "{}", "admin"
                    )
                    ids.append(queued.id)
                    await claim()
                renewals = await timed(
                    lambda ids=ids: db.renew_leases(database, "here", ids, lease()[1]), 500
                )
                print(f"lease renewal of {running} tasks: p50 {ms(renewals, 0.5):.3f} ms")
                async with database.transaction() as conn:
                    await conn.execute("UPDATE tasks SET status = 'succeeded' WHERE node = 'here'")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.history, args.tasks))

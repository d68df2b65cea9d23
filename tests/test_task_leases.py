"""Task leases in the database: who holds a task, takeover, and what a lost claim may write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from amphub import db
from amphub.clock import rfc3339

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LEASE = 3


def at(seconds: float) -> tuple[str, str]:
    """(now, lease end) `seconds` after START."""
    now = START + timedelta(seconds=seconds)
    return rfc3339(now), rfc3339(now + timedelta(seconds=LEASE))


async def queue(database: db.Database) -> db.Task:
    return await db.insert_task(database, "scan", "team", "m1", "master", "c0", "{}", "admin")


async def test_a_lapsed_task_is_taken_over_and_the_lost_claim_records_nothing(tmp_path: Path):
    async with db.opened(tmp_path / "amphub.db") as database:
        queued = await queue(database)
        first = await db.claim_task(database, "a", *at(0), 3)
        assert first is not None and (first.id, first.node, first.attempts) == (queued.id, "a", 1)
        assert await db.claim_task(database, "b", *at(LEASE), 3) is None  # held until then

        taken = await db.claim_task(database, "b", *at(LEASE + 1), 3)
        assert taken is not None and (taken.id, taken.node, taken.attempts) == (queued.id, "b", 2)
        assert taken.message == "taken over from node a, whose lease lapsed"
        # Node a learns at its next renewal or progress report, and cannot close the task.
        assert await db.renew_leases(database, "a", [queued.id], at(LEASE + 1)[1]) == {}
        assert await db.set_task_progress(database, first, 50, "late") is None
        assert not await db.finish_task(database, first, "failed", "late")

        assert await db.renew_leases(database, "b", [queued.id], at(LEASE + 2)[1]) == {
            queued.id: (2, False)
        }
        assert await db.set_task_progress(database, taken, 50, "halfway") is False
        assert await db.finish_task(database, taken, "succeeded", "done")
        task = await db.get_task(database, queued.id)
        assert task is not None
        assert (task.status, task.message, task.node, task.progress) == (
            "succeeded",
            "done",
            "b",
            100,
        )


async def test_a_lapsed_task_canceled_or_tried_too_often_is_closed_not_taken(tmp_path: Path):
    async with db.opened(tmp_path / "amphub.db") as database:
        canceled, exhausted = await queue(database), await queue(database)
        for _ in range(2):
            assert await db.claim_task(database, "a", *at(0), 3) is not None
        await db.cancel_task(database, canceled.id)
        await database.write("UPDATE tasks SET attempts = 3 WHERE id = ?", (exhausted.id,))

        assert await db.claim_task(database, "b", *at(LEASE + 1), 3) is None
        closed = [await db.get_task(database, task.id) for task in (canceled, exhausted)]
        assert [(task.status, task.message) for task in closed if task] == [
            ("canceled", "canceled"),
            ("failed", "interrupted 3 times (its node restarted or was lost); not tried again"),
        ]


async def test_start_up_requeues_only_its_own_and_lapsed_tasks(tmp_path: Path):
    async with db.opened(tmp_path / "amphub.db") as database:
        mine, lapsed, theirs, canceled = [await queue(database) for _ in range(4)]
        for node, seconds in (("a", 0), ("b", 0), ("c", LEASE), ("a", 0)):
            await db.claim_task(database, node, *at(seconds), 3)
        await db.cancel_task(database, canceled.id)

        await db.requeue_interrupted(database, "a", at(LEASE + 1)[0], 3)
        tasks = [await db.get_task(database, task.id) for task in (mine, lapsed, theirs, canceled)]
        assert [(task.status, task.node) for task in tasks if task] == [
            ("queued", "a"),
            ("queued", "b"),
            ("running", "c"),
            ("canceled", "a"),
        ]

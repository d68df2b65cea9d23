"""Task leases in the database: who holds a task, takeover, and what a lost claim may write."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from amphub import db
from amphub.clock import rfc3339
from amphub.config import Config

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LEASE = 3


def at(seconds: float) -> tuple[str, str]:
    """(now, lease end) `seconds` after START."""
    now = START + timedelta(seconds=seconds)
    return rfc3339(now), rfc3339(now + timedelta(seconds=LEASE))


def opened(tmp_path: Path, database: str) -> AbstractAsyncContextManager[db.Database]:
    """The `database` setting's database: SQLite in tmp_path, or a PostgreSQL URL."""
    return db.opened(Config(data_dir=tmp_path, database=database).database_target)


async def queue(database: db.Database) -> db.Task:
    return await db.insert_task(database, "scan", "team", "m1", "master", "c0", "{}", "admin")


async def test_a_lapsed_task_is_taken_over_and_the_lost_claim_records_nothing(
    tmp_path: Path, database: str
):
    async with opened(tmp_path, database) as metadata:
        queued = await queue(metadata)
        first = await db.claim_task(metadata, "a", *at(0), 3)
        assert first is not None and (first.id, first.node, first.attempts) == (queued.id, "a", 1)
        assert await db.claim_task(metadata, "b", *at(LEASE), 3) is None  # held until then

        taken = await db.claim_task(metadata, "b", *at(LEASE + 1), 3)
        assert taken is not None and (taken.id, taken.node, taken.attempts) == (queued.id, "b", 2)
        assert taken.message == "taken over from node a, whose lease lapsed"
        # Node a learns at its next renewal or progress report, and cannot close the task.
        assert await db.renew_leases(metadata, "a", [queued.id], at(LEASE + 1)[1]) == {}
        assert await db.set_task_progress(metadata, first, 50, "late") is None
        assert not await db.finish_task(metadata, first, "failed", "late")

        assert await db.renew_leases(metadata, "b", [queued.id], at(LEASE + 2)[1]) == {
            queued.id: (2, False)
        }
        assert await db.set_task_progress(metadata, taken, 50, "halfway") is False
        assert await db.finish_task(metadata, taken, "succeeded", "done")
        task = await db.get_task(metadata, queued.id)
        assert task is not None
        assert (task.status, task.message, task.node, task.progress) == (
            "succeeded",
            "done",
            "b",
            100,
        )


async def test_a_lapsed_task_canceled_or_tried_too_often_is_closed_not_taken(
    tmp_path: Path, database: str
):
    async with opened(tmp_path, database) as metadata:
        canceled, exhausted = await queue(metadata), await queue(metadata)
        for _ in range(2):
            assert await db.claim_task(metadata, "a", *at(0), 3) is not None
        await db.cancel_task(metadata, canceled.id)
        await metadata.write("UPDATE tasks SET attempts = 3 WHERE id = ?", (exhausted.id,))

        assert await db.claim_task(metadata, "b", *at(LEASE + 1), 3) is None
        closed = [await db.get_task(metadata, task.id) for task in (canceled, exhausted)]
        assert [(task.status, task.message) for task in closed if task] == [
            ("canceled", "canceled"),
            ("failed", "interrupted 3 times (its node restarted or was lost); not tried again"),
        ]


async def test_start_up_requeues_only_its_own_and_lapsed_tasks(tmp_path: Path, database: str):
    async with opened(tmp_path, database) as metadata:
        mine, lapsed, theirs, canceled = [await queue(metadata) for _ in range(4)]
        for node, seconds in (("a", 0), ("b", 0), ("c", LEASE), ("a", 0)):
            await db.claim_task(metadata, node, *at(seconds), 3)
        await db.cancel_task(metadata, canceled.id)

        await db.requeue_interrupted(metadata, "a", at(LEASE + 1)[0], 3)
        tasks = [await db.get_task(metadata, task.id) for task in (mine, lapsed, theirs, canceled)]
        assert [(task.status, task.node) for task in tasks if task] == [
            ("queued", "a"),
            ("queued", "b"),
            ("running", "c"),
            ("canceled", "a"),
        ]


async def test_a_command_claims_its_own_task_only_while_no_node_took_it(
    tmp_path: Path, database: str
):
    """What `amphub admin import` does with its scan: run it here unless a node has it."""
    async with opened(tmp_path, database) as metadata:
        mine, theirs = await queue(metadata), await queue(metadata)
        claimed = await db.claim_queued_task(metadata, mine.id, "cli", at(0)[1])
        assert claimed is not None and (claimed.status, claimed.node) == ("running", "cli")
        assert await db.claim_queued_task(metadata, mine.id, "cli", at(0)[1]) is None
        node = await db.claim_task(metadata, "a", *at(0), 3)
        assert node is not None and node.id == theirs.id  # the command's own is not handed out
        assert await db.claim_queued_task(metadata, theirs.id, "cli", at(0)[1]) is None

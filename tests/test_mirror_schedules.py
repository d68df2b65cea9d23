"""Refresh schedules of mirrored branches: kept, listed, swept on the hub's clock, removed.

The upstream is a second amphub; the mirror hub's clock stands still until the test moves
it, and the sweep is called directly, as the server calls it every minute.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from amphub.http import keys
from amphub.services.mirror_schedule import refresh_due_mirrors
from tests.conftest import FakeClock, Hub, git, push, running_hub, start_hub, wait_task
from tests.test_mirror import FILES, register

MIRRORS = "/api/v1/upstreams/up/mirrors"


async def _listed(hub: Hub) -> list[dict]:
    status, answer = await hub.call("GET", MIRRORS)
    assert status == 200, answer
    return answer["mirrors"]


async def _fetches(hub: Hub) -> list[dict]:
    """The mirror tasks, newest first; the server's own sweep may have queued some too."""
    _, answer = await hub.call("GET", "/api/v1/tasks?kind=mirror")
    return answer["tasks"]


async def _branches(hub: Hub) -> dict[str, str]:
    _, refs = await hub.call("GET", "/api/v1/models/hf/acme__gpt/refs")
    return {branch["name"]: branch["commit"] for branch in refs["branches"]}


async def test_a_schedule_queues_refreshes_when_due_and_goes_with_its_upstream(tmp_path: Path):
    await git("lfs", "install", "--skip-repo")
    clock = FakeClock()
    server, key = await start_hub(tmp_path / "upstream")
    try:
        async with (
            aiohttp.ClientSession() as session,
            running_hub(tmp_path / "mirror", clock) as hub,
        ):
            upstream = Hub(server, session, key, tmp_path / "upstream")
            await upstream.space_and_model("acme", "gpt")
            work = tmp_path / "work"
            await push(work, FILES, "weights", clone=upstream.remote("acme", "gpt"))
            await hub.space("hf")
            await register(hub, upstream)
            amphub = hub.server.app[keys.HUB]
            for bad in (-1, 24 * 367, "6", True):
                body = {"repo": "acme/gpt", "refresh_hours": bad}
                status, answer = await hub.call("POST", MIRRORS, json=body)
                assert status == 400, (bad, answer)
            body = {"repo": "acme/gpt", "revision": "a" * 40, "refresh_hours": 6}
            status, answer = await hub.call("POST", MIRRORS, json=body)
            assert status == 400
            assert answer["error"]["message"] == "a commit never changes: refresh a branch or a tag"
            assert (await _fetches(hub)) == []  # refused before anything was queued
            status, task = await hub.call(
                "POST", MIRRORS, json={"repo": "acme/gpt", "refresh_hours": 6}
            )
            assert status == 202, task
            first = await wait_task(hub, task["id"])
            assert first["status"] == "succeeded", first
            in_six_hours = "2026-01-15T18:00:00Z"  # the clock stands at 12:00
            assert await _listed(hub) == [
                {
                    "repo": "acme/gpt",
                    "model": "hf/acme__gpt",
                    "created_at": "2026-01-15T12:00:00Z",
                    "schedules": [{"revision": "main", "refresh_hours": 6, "due_at": in_six_hours}],
                    "last_refreshed_at": first["finished_at"],
                    "last_task": {"id": first["id"], "status": "succeeded", "revision": "main"},
                }
            ]
            await refresh_due_mirrors(amphub)
            assert len(await _fetches(hub)) == 1  # not due yet
            before = await _branches(hub)

            # Due: a refresh is queued once, by whom set the schedule, and fetches what changed.
            await push(work, {"notes.txt": b"new upstream commit\n"}, "notes")
            clock.advance(hours=6)
            await refresh_due_mirrors(amphub)
            await refresh_due_mirrors(amphub)
            refresh, _ = await _fetches(hub)
            assert (refresh["ref"], refresh["created_by"]) == ("main", "admin")
            assert (await wait_task(hub, refresh["id"]))["status"] == "succeeded"
            after = await _branches(hub)
            assert after.keys() == before.keys() and after != before
            (listed,) = await _listed(hub)
            assert listed["schedules"][0]["due_at"] == "2026-01-16T00:00:00Z"
            assert listed["last_task"]["id"] == refresh["id"]

            # Due while a fetch of the model is queued or running: none more, still due.
            clock.advance(hours=6)
            async with amphub.locks.hold(("repository", "hf", "acme__gpt")):
                status, busy = await hub.call("POST", MIRRORS, json={"repo": "acme/gpt"})
                assert status == 202, busy
                await refresh_due_mirrors(amphub)
                assert len(await _fetches(hub)) == 3
                (listed,) = await _listed(hub)
                assert listed["schedules"][0]["due_at"] == "2026-01-16T00:00:00Z"
            assert (await wait_task(hub, busy["id"]))["status"] == "succeeded"

            # 0 removes the schedule; so does removing the upstream. The model stays.
            body = {"repo": "acme/gpt", "refresh_hours": 0}
            status, task = await hub.call("POST", MIRRORS, json=body)
            assert status == 202, task
            await wait_task(hub, task["id"])
            assert (await _listed(hub))[0]["schedules"] == []
            body = {"repo": "acme/gpt", "revision": "main", "refresh_hours": 1}
            status, task = await hub.call("POST", MIRRORS, json=body)
            await wait_task(hub, task["id"])
            assert len((await _listed(hub))[0]["schedules"]) == 1
            assert (await hub.call("DELETE", "/api/v1/upstreams/up"))[0] == 204
            assert (await hub.call("GET", MIRRORS))[0] == 404
            await register(hub, upstream)
            (listed,) = await _listed(hub)
            assert (listed["model"], listed["schedules"]) == ("hf/acme__gpt", [])
            clock.advance(hours=2)
            await refresh_due_mirrors(amphub)
            assert len(await _fetches(hub)) == 5
            await hub.user("bob")
            assert (await hub.call("GET", MIRRORS, user="bob"))[0] == 404
    finally:
        await server.close()

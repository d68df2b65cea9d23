"""A space's lifetime with an injected clock, through git and the API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amphub.http import keys
from amphub.services.spaces import release_due_spaces
from tests.conftest import GIB, FakeClock, Hub, commit, git, push, running_hub


@pytest.fixture
async def timed(tmp_path: Path):
    clock = FakeClock()
    async with running_hub(tmp_path / "data", clock) as hub:
        hub.clock = clock
        await hub.user("ada", creator=True)
        # monthly: expires 2026-02-15 12:00
        await hub.space_and_model("team", "m1", owner="ada")
        yield hub


async def push_file(work: Path, name: str) -> object:
    """Commit a file and try to push it: the push's result, refused or not."""
    await commit(work, {name: os.urandom(100)}, name)
    return await git("push", "-q", cwd=work, check=False)


async def lfs_batch(hub: Hub, operation: str) -> tuple[int, dict]:
    url = f"{hub.base}/team/m1.git/info/lfs/objects/batch"
    body = {"operation": operation, "objects": [{"oid": "a" * 64, "size": 10}]}
    headers = {"Authorization": f"Bearer {hub.keys['ada']}"}
    async with hub.session.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_space_lifetime_through_git_and_api(timed: Hub, tmp_path: Path) -> None:
    hub = timed
    url = hub.remote("team", "m1", "ada")
    work = tmp_path / "w"
    await git("clone", "-q", url, str(work))
    assert (await push_file(work, "a.txt")).returncode == 0
    _, space = await hub.call("GET", "/api/v1/spaces/team", user="ada")
    assert space["status"] == "in_use" and space["expires_at"] == "2026-02-15T12:00:00Z"

    hub.clock.advance(days=32)  # grace period: read-only
    _, space = await hub.call("GET", "/api/v1/spaces/team", user="ada")
    assert space["status"] == "grace_period"
    refused = await push_file(work, "b.txt")
    assert refused.returncode != 0
    assert (
        "remote: space team expired on 2026-02-15 12:00 UTC and is read-only until"
        " 2026-02-22 12:00 UTC; renew it to push and upload again"
    ) in refused.stderr
    await git("clone", "-q", url, str(tmp_path / "grace-clone"))
    status, body = await lfs_batch(hub, "upload")
    assert status == 403 and "is read-only until" in body["message"]
    assert (await lfs_batch(hub, "download"))[0] == 200
    status, body = await hub.call(
        "POST", "/api/v1/spaces/team/models", user="ada", json={"id": "m2"}
    )
    assert status == 403 and "read-only" in body["error"]["message"]

    hub.clock.advance(days=7)  # retention period: nothing but renewal
    _, space = await hub.call("GET", "/api/v1/spaces/team", user="ada")
    assert space["status"] == "retention_period"
    status, body = await lfs_batch(hub, "download")
    assert status == 403 and "until its owner renews it" in body["message"]
    cloned = await git("clone", "-q", url, str(tmp_path / "retained"), check=False)
    assert cloned.returncode != 0
    assert "its data is kept until 2026-03-09 12:00 UTC" in cloned.stderr
    status, body = await hub.call("GET", "/api/v1/models/team/m1", user="ada")
    assert status == 403 and "until its owner renews it" in body["error"]["message"]
    status, body = await hub.call("GET", "/api/v1/models?space=team", user="ada")
    assert body["models"] == []

    status, space = await hub.call(
        "POST", "/api/v1/spaces/team/renew", user="ada", json={"period": 2}
    )
    assert status == 200 and space["status"] == "in_use"
    assert space["expires_at"] == "2026-04-23T12:00:00Z"  # two months from now (2026-02-23)
    await git("pull", "-q", "--rebase", cwd=work)
    assert (await push_file(work, "c.txt")).returncode == 0


async def test_released_after_retention(timed: Hub, tmp_path: Path) -> None:
    hub = timed
    repo = hub.data_dir / "repos" / "team" / "m1.git"
    assert repo.is_dir()
    hub.clock.advance(days=31 + 7 + 15 + 1)
    released = await release_due_spaces(hub.server.app[keys.HUB])
    assert released == ["team"]
    assert not repo.exists()
    assert (await hub.call("GET", "/api/v1/spaces/team", user="ada"))[0] == 404
    assert (await hub.call("GET", "/api/v1/spaces", user="ada"))[1]["spaces"] == []
    status, _ = await hub.call("POST", "/api/v1/spaces/team/renew", user="ada", json={})
    assert status == 404
    assert await release_due_spaces(hub.server.app[keys.HUB]) == []


async def test_unsubscribe_needs_the_owner_and_the_id(timed: Hub, tmp_path: Path) -> None:
    hub = timed
    await hub.user("max")
    await hub.call(
        "PUT", "/api/v1/spaces/team/members/max", user="ada", json={"role": "maintainer"}
    )
    status, _ = await hub.call(
        "POST", "/api/v1/spaces/team/unsubscribe", user="max", json={"confirm": "team"}
    )
    assert status == 403
    status, body = await hub.call(
        "POST", "/api/v1/spaces/team/unsubscribe", user="ada", json={"confirm": "tea"}
    )
    assert status == 400 and "type the space id" in body["error"]["message"]
    status, body = await hub.call(
        "POST", "/api/v1/spaces/team/unsubscribe", user="ada", json={"confirm": "team"}
    )
    assert status == 200 and body["status"] == "released"
    await hub.server.app[keys.HUB].background.drain()
    assert not (hub.data_dir / "repos" / "team" / "m1.git").exists()
    assert (await hub.call("GET", "/api/v1/spaces/team", user="ada"))[0] == 404
    result = await git("ls-remote", hub.remote("team", "m1", "ada"), check=False)
    assert result.returncode != 0 and "not found" in result.stderr


async def test_quota_changes(timed: Hub, tmp_path: Path) -> None:
    hub = timed
    cases = [
        ({"quota": 20 * GIB}, 200, None),
        ({"quota": 20 * GIB + 1}, 400, "multiple of the quota unit"),
        ({"quota": 0}, 400, "multiple of the quota unit"),
        ({"quota": "lots"}, 400, "field 'quota' must be int"),
    ]
    for body, status, message in cases:
        got, answer = await hub.call("POST", "/api/v1/spaces/team/quota", user="ada", json=body)
        assert got == status, answer
        if message:
            assert message in answer["error"]["message"]
    _, space = await hub.call("GET", "/api/v1/spaces/team", user="ada")
    assert space["quota"] == 20 * GIB

    await hub.space("payg", owner="ada", billing_mode="pay_as_you_go")
    status, body = await hub.call(
        "POST", "/api/v1/spaces/payg/quota", user="ada", json={"quota": 20 * GIB}
    )
    assert status == 400 and "monthly and yearly spaces only" in body["error"]["message"]
    status, _ = await hub.call("POST", "/api/v1/spaces/payg/renew", user="ada", json={})
    assert status == 400


async def test_quota_cannot_go_below_usage(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "data", quota_unit=1024 * 1024) as hub:
        await hub.space("team", quota=4 * 1024 * 1024)
        await hub.model("team", "m1")
        raw = {"raw.dat": os.urandom(2 * 1024 * 1024)}
        await push(tmp_path / "w", raw, "raw", clone=hub.remote("team", "m1"))
        status, body = await hub.call(
            "POST", "/api/v1/spaces/team/quota", json={"quota": 1024 * 1024}
        )
        assert status == 400 and "below the" in body["error"]["message"]

"""Granting and revoking roles, visibility changes, and the audit log."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from amphub.http import keys
from tests.conftest import Hub, git


async def test_revoked_member_fails_on_the_next_request(hub: Hub, tmp_path: Path) -> None:
    await hub.user("bob")
    await hub.space_and_model("team", "m1")
    url = hub.remote("team", "m1", "bob")
    assert (await git("ls-remote", url, check=False)).returncode != 0
    await hub.call("PUT", "/api/v1/models/team/m1/members/bob", json={"role": "developer"})
    await git("ls-remote", url)
    status, _ = await hub.call("DELETE", "/api/v1/models/team/m1/members/bob")
    assert status == 204
    result = await git("ls-remote", url, check=False)
    assert result.returncode != 0 and "remote: no model team/m1" in result.stderr

    await hub.call("PUT", "/api/v1/spaces/team/members/bob", json={"role": "maintainer"})
    await git("ls-remote", url)
    await hub.call("DELETE", "/api/v1/spaces/team/members/bob")
    assert (await git("ls-remote", url, check=False)).returncode != 0


async def test_membership_changes_racing_pushes_leave_a_consistent_repo(hub: Hub, tmp_path: Path):
    await hub.user("bob")
    await hub.space_and_model("team", "m1")
    await hub.call("PUT", "/api/v1/models/team/m1/members/bob", json={"role": "developer"})
    works = []
    for i in range(6):
        work = tmp_path / f"w{i}"
        await git("clone", "-q", hub.remote("team", "m1", "bob"), str(work))
        (work / f"f{i}.dat").write_bytes(os.urandom(200_000))
        await git("add", ".", cwd=work)
        await git("commit", "-q", "-m", f"f{i}", cwd=work)
        works.append(work)

    async def toggle() -> None:
        for i in range(10):
            role = "user" if i % 2 == 0 else "developer"
            await hub.call("PUT", "/api/v1/models/team/m1/members/bob", json={"role": role})
            await asyncio.sleep(0.01)

    pushes = [
        git("push", "-q", "origin", f"HEAD:refs/heads/b{i}", cwd=w, check=False)
        for i, w in enumerate(works)
    ]
    results = await asyncio.gather(toggle(), *pushes)
    refs = (await git("ls-remote", hub.remote("team", "m1"))).stdout
    for i, result in enumerate(results[1:]):
        assert (result.returncode == 0) == (f"refs/heads/b{i}" in refs), result.stderr
    copy = tmp_path / "copy"
    await git("clone", "-q", "--mirror", hub.remote("team", "m1"), str(copy))
    await git("fsck", "--strict", cwd=copy)
    _, members = await hub.call("GET", "/api/v1/models/team/m1/members")
    assert {"user": "bob", "role": "developer"} in members["members"]


async def test_member_routes_validate(hub: Hub) -> None:
    await hub.user("bob")
    await hub.space_and_model("team", "m1")
    cases = [
        (
            "PUT",
            "/api/v1/models/team/m1/members/bob",
            {"role": "owner"},
            400,
            "role must be one of",
        ),
        ("PUT", "/api/v1/models/team/m1/members/nobody", {"role": "user"}, 404, "no user nobody"),
        ("PUT", "/api/v1/models/team/m1/members/admin", {"role": "user"}, 400, "fixed"),
        ("DELETE", "/api/v1/models/team/m1/members/bob", None, 404, "not a member"),
        (
            "PUT",
            "/api/v1/spaces/team/members/bob",
            {"role": "developer"},
            400,
            "role must be one of",
        ),
        ("DELETE", "/api/v1/spaces/team/members/bob", None, 404, "not a member"),
    ]
    for method, path, body, status, message in cases:
        got, answer = await hub.call(method, path, json=body)
        assert got == status, (path, answer)
        assert message in answer["error"]["message"]


async def test_visibility_change_opens_and_closes_a_model(hub: Hub, tmp_path: Path) -> None:
    await hub.space_and_model("team", "m1")
    anonymous = hub.remote("team", "m1", None)
    assert (await git("ls-remote", anonymous, check=False)).returncode != 0
    status, model = await hub.call(
        "PATCH", "/api/v1/models/team/m1", json={"visibility": "public", "name": "M 一"}
    )
    assert status == 200 and model["visibility"] == "public" and model["name"] == "M 一"
    await git("ls-remote", anonymous)
    await hub.call("PATCH", "/api/v1/models/team/m1", json={"visibility": "private"})
    assert (await git("ls-remote", anonymous, check=False)).returncode != 0
    status, body = await hub.call("PATCH", "/api/v1/models/team/m1", json={"visibility": "open"})
    assert status == 400


async def test_audit_log(hub: Hub) -> None:
    await hub.user("ada", creator=True)
    await hub.user("bob")
    await hub.space("team", owner="ada")
    await hub.model("team", "m1", owner="ada")
    await hub.model("team", "m2", owner="ada")
    steps = [
        ("PUT", "/api/v1/spaces/team/members/bob", {"role": "maintainer"}),
        ("PUT", "/api/v1/models/team/m1/members/bob", {"role": "developer"}),
        ("DELETE", "/api/v1/models/team/m1/members/bob", None),
        ("POST", "/api/v1/spaces/team/quota", {"quota": 20 * 1024**3}),
        ("POST", "/api/v1/spaces/team/renew", {"period": 1}),
        ("DELETE", "/api/v1/models/team/m2", None),
        ("DELETE", "/api/v1/spaces/team/members/bob", None),
        ("POST", "/api/v1/me/key", None),
    ]
    for method, path, body in steps:
        status, answer = await hub.call(method, path, user="ada", json=body)
        assert status in (200, 204), (path, answer)
    hub.keys["ada"] = answer["key"]
    await hub.call("POST", "/api/v1/spaces/team/unsubscribe", user="ada", json={"confirm": "team"})
    await hub.server.app[keys.HUB].background.drain()

    status, body = await hub.call("GET", "/api/v1/audit")
    assert status == 200
    actions = [
        (e["actor"], e["action"], e["space"], e["model"], e["target"]) for e in body["entries"]
    ]
    assert [a for a in actions if a[0] == "ada"] == [
        ("ada", "grant_space_role", "team", None, "bob"),
        ("ada", "grant_model_role", "team", "m1", "bob"),
        ("ada", "revoke_model_role", "team", "m1", "bob"),
        ("ada", "change_quota", "team", None, None),
        ("ada", "renew_space", "team", None, None),
        ("ada", "delete_model", "team", "m2", None),
        ("ada", "revoke_space_role", "team", None, "bob"),
        ("ada", "regenerate_key", None, None, "ada"),
        ("ada", "unsubscribe_space", "team", None, None),
    ]
    assert ("admin", "create_user", None, None, "bob") in actions
    assert actions[-1] == ("amphub", "delete_model", "team", "m1", None)  # the release step
    assert all(e["at"].endswith("Z") for e in body["entries"])


async def test_audit_visibility(hub: Hub) -> None:
    await hub.user("ada", creator=True)
    await hub.user("bob")
    await hub.space("team", owner="ada")
    await hub.call(
        "PUT", "/api/v1/spaces/team/members/bob", user="ada", json={"role": "maintainer"}
    )
    status, body = await hub.call("GET", "/api/v1/audit?space=team", user="ada")
    assert status == 200 and [e["action"] for e in body["entries"]] == ["grant_space_role"]
    assert (await hub.call("GET", "/api/v1/audit?space=team", user="bob"))[0] == 403
    assert (await hub.call("GET", "/api/v1/audit", user="ada"))[0] == 403
    assert (await hub.call("GET", "/api/v1/audit", user=""))[0] == 401


@pytest.mark.parametrize("query", ["limit=-1", "limit=0", "after=-5", "limit=x"])
async def test_audit_paging_out_of_range_is_refused(hub: Hub, query: str) -> None:
    status, body = await hub.call("GET", f"/api/v1/audit?{query}")
    assert status == 400 and body["error"]["code"] == "bad_request"

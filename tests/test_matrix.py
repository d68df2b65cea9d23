"""Every space role, model role and visibility against the real entry points.

The expected table is written out here from the design's matrix, not derived from
amphub.policy, so that a wrong policy fails this test.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import Hub, git

VIEW, RETRIEVE, READ, WRITE, EDIT, DELETE = ["view", "retrieve", "read", "write", "edit", "delete"]
ALL = {VIEW, RETRIEVE, READ, WRITE, EDIT, DELETE}
USER = {VIEW, RETRIEVE, READ}
NONE: set[str] = set()

VISIBILITIES = ("private", "internal", "public")
# actor -> permissions on a model for (private, internal, public)
EXPECTED = {
    "admin": (ALL, ALL, ALL),
    "sowner": (ALL, ALL, ALL),  # space owner
    "smaint": (ALL, ALL, ALL),  # space maintainer
    "suser": (NONE, USER, USER),  # space user: only what visibility gives
    "mowner": (ALL, ALL, ALL),  # the model's creator
    "mmaint": (ALL, ALL, ALL),
    "mdev": (USER | {WRITE}, USER | {WRITE}, USER | {WRITE}),
    "muser": (USER, USER, USER),
    "mvisit": ({VIEW, RETRIEVE}, USER, USER),
    "stranger": (NONE, USER, USER),
    "anonymous": (NONE, NONE, USER),
}
SPACE_GRANTS = {"smaint": "maintainer", "suser": "user", "mowner": "user"}
MODEL_GRANTS = {"mmaint": "maintainer", "mdev": "developer", "muser": "user", "mvisit": "visitor"}


@pytest.fixture
async def world(hub: Hub, tmp_path: Path) -> Hub:
    for name in EXPECTED:
        if name not in ("admin", "anonymous"):
            await hub.user(name, creator=name == "sowner")
    await hub.space("sp", owner="sowner")
    for user, role in SPACE_GRANTS.items():
        status, _ = await hub.call(
            "PUT", f"/api/v1/spaces/sp/members/{user}", user="sowner", json={"role": role}
        )
        assert status == 200
    for visibility in VISIBILITIES:
        await make_model(hub, visibility[:4], visibility)
    await git("lfs", "install", "--skip-repo")
    seed = tmp_path / "seed"
    await git("clone", "-q", hub.remote("sp", "priv", "mowner"), str(seed))
    (seed / "weights.bin").write_bytes(os.urandom(2000))
    await git("add", "weights.bin", cwd=seed)
    await git("commit", "-q", "-m", "weights", cwd=seed)
    for visibility in VISIBILITIES:
        await git("push", "-qf", hub.remote("sp", visibility[:4], "mowner"), "master", cwd=seed)
    return hub


async def make_model(hub: Hub, model: str, visibility: str) -> None:
    await hub.model("sp", model, owner="mowner", visibility=visibility)
    for user, role in MODEL_GRANTS.items():
        status, _ = await hub.call(
            "PUT", f"/api/v1/models/sp/{model}/members/{user}", user="mowner", json={"role": role}
        )
        assert status == 200


def refused_status(allowed: set[str], actor: str) -> int:
    if actor == "anonymous":
        return 401
    return 403 if VIEW in allowed else 404


def as_user(actor: str) -> str:
    return "" if actor == "anonymous" else actor


async def check_api(hub: Hub, actor: str, model: str, allowed: set[str]) -> None:
    who = as_user(actor)
    status, body = await hub.call("GET", f"/api/v1/models/sp/{model}", user=who)
    assert status == (200 if VIEW in allowed else refused_status(allowed, actor)), (actor, model)
    if status == 200:
        expected = {"read": "read_files", "write": "write_files"}
        assert set(body["permissions"]) == {expected.get(p, p) for p in allowed}

    status, body = await hub.call("GET", "/api/v1/models?space=sp&per_page=100", user=who)
    assert status == 200
    listed = {m["id"] for m in body["models"]}
    assert (model in listed) == (RETRIEVE in allowed), (actor, model, listed)

    for method, path, json in (
        ("PATCH", f"/api/v1/models/sp/{model}", {"name": f"{model} by {actor}"}),
        ("GET", f"/api/v1/models/sp/{model}/members", None),
    ):
        status, _ = await hub.call(method, path, user=who, json=json)
        want = 200 if EDIT in allowed else refused_status(allowed, actor)
        assert status == want, (actor, model, method, path, status)

    if DELETE not in allowed:
        status, _ = await hub.call("DELETE", f"/api/v1/models/sp/{model}", user=who)
        assert status == refused_status(allowed, actor), (actor, model, "DELETE")


async def check_delete(hub: Hub, actor: str, visibility: str, allowed: set[str]) -> None:
    if DELETE not in allowed:
        return
    model = f"del-{actor}-{visibility[:4]}"
    await make_model(hub, model, visibility)
    status, _ = await hub.call("DELETE", f"/api/v1/models/sp/{model}", user=as_user(actor))
    assert status == 204, (actor, model)


async def check_git(hub: Hub, tmp_path: Path, actor: str, model: str, allowed: set[str]) -> None:
    user = None if actor == "anonymous" else actor
    url = hub.remote("sp", model, user)
    work = tmp_path / f"{actor}-{model}"
    cloned = await git("clone", "-q", url, str(work), check=False)
    assert (cloned.returncode == 0) == (READ in allowed), (actor, model, cloned.stderr)
    if cloned.returncode == 0:
        assert len((work / "weights.bin").read_bytes()) == 2000  # LFS content, not a pointer
        await git("lfs", "fsck", cwd=work)
    else:
        await git("clone", "-q", hub.remote("sp", model, "admin"), str(work))
        await git("remote", "set-url", "origin", url, cwd=work)
    (work / f"{actor}.bin").write_bytes(os.urandom(1000))
    await git("add", f"{actor}.bin", cwd=work)
    await git("commit", "-q", "-m", f"from {actor}", cwd=work)
    pushed = await git("push", "-q", "origin", f"HEAD:refs/heads/{actor}", cwd=work, check=False)
    assert (pushed.returncode == 0) == (WRITE in allowed), (actor, model, pushed.stderr)
    branches = (await git("ls-remote", hub.remote("sp", model, "admin"))).stdout
    assert (f"refs/heads/{actor}" in branches) == (WRITE in allowed)


@pytest.mark.parametrize("actor", list(EXPECTED))
async def test_matrix(world: Hub, tmp_path: Path, actor: str) -> None:
    for visibility, allowed in zip(VISIBILITIES, EXPECTED[actor], strict=True):
        model = visibility[:4]
        await asyncio.gather(
            check_api(world, actor, model, allowed),
            check_git(world, tmp_path, actor, model, allowed),
            check_delete(world, actor, visibility, allowed),
        )


async def test_space_routes_by_space_role(world: Hub) -> None:
    cases = {
        "sowner": (200, 200, 200),
        "smaint": (200, 200, 403),
        "suser": (200, 403, 403),
        "mowner": (200, 403, 403),
        "stranger": (404, 404, 404),
        "anonymous": (401, 401, 401),
    }
    for actor, (use, authorize, unsubscribe) in cases.items():
        who = as_user(actor)
        assert (await world.call("GET", "/api/v1/spaces/sp", user=who))[0] == use, actor
        assert (await world.call("GET", "/api/v1/spaces/sp/members", user=who))[0] == use, actor
        status, _ = await world.call(
            "PUT", "/api/v1/spaces/sp/members/stranger", user=who, json={"role": "user"}
        )
        assert status == authorize, actor
        if status == 200:
            await world.call("DELETE", "/api/v1/spaces/sp/members/stranger", user=who)
        status, _ = await world.call(
            "POST", "/api/v1/spaces/sp/unsubscribe", user=who, json={"confirm": "wrong"}
        )
        assert status == (400 if unsubscribe == 200 else unsubscribe), actor
        status, body = await world.call(
            "POST", "/api/v1/spaces/sp/models", user=who, json={"id": f"new-{actor}"}
        )
        assert status == (201 if use == 200 else use), (actor, body)

"""Paged user and space lists, added for the console's long lists, over the real API."""

from __future__ import annotations

import pytest

from tests.conftest import GIB, Hub


def err(message: str) -> dict:
    return {"error": {"code": "bad_request", "message": message}}


async def test_users_by_page_with_total_and_name_filter(hub: Hub):
    for name in ("ann", "anna", "bert", "carl"):
        await hub.user(name)
    status, body = await hub.call("GET", "/api/v1/users?page=1&per_page=2")
    assert status == 200
    assert ([u["name"] for u in body["users"]], body["total"]) == (["admin", "ann"], 5)
    _, body = await hub.call("GET", "/api/v1/users?page=3&per_page=2")
    assert ([u["name"] for u in body["users"]], body["total"]) == (["carl"], 5)
    _, body = await hub.call("GET", "/api/v1/users?page=9&per_page=2")
    assert (body["users"], body["total"]) == ([], 5)
    _, body = await hub.call("GET", "/api/v1/users?per_page=10&q=ANN")
    assert ([u["name"] for u in body["users"]], body["total"]) == (["ann", "anna"], 2)
    # Without page or per_page the whole list, as before paging existed.
    _, body = await hub.call("GET", "/api/v1/users")
    assert set(body) == {"users"} and len(body["users"]) == 5
    _, body = await hub.call("GET", "/api/v1/users?q=bert")
    assert [u["name"] for u in body["users"]] == ["bert"]


async def test_spaces_by_page_with_total_unit_and_filter(hub: Hub):
    await hub.user("ada", creator=True)
    for space in ("alpha", "beta", "gamma"):
        await hub.space(space)
    await hub.space("adas", owner="ada", name="Ada's Ünïcode space")
    status, body = await hub.call("GET", "/api/v1/spaces?page=2&per_page=2")
    assert status == 200
    assert [s["id"] for s in body["spaces"]] == ["beta", "gamma"]
    assert (body["total"], body["quota_unit"]) == (4, 10 * GIB)
    assert body["spaces"][0]["quota"] == 10 * GIB and "used" in body["spaces"][0]
    _, body = await hub.call("GET", "/api/v1/spaces?per_page=50&q=ünï")
    assert [s["id"] for s in body["spaces"]] == ["adas"]
    # Only the spaces the caller may use are counted.
    _, body = await hub.call("GET", "/api/v1/spaces?per_page=50", user="ada")
    assert ([s["id"] for s in body["spaces"]], body["total"]) == (["adas"], 1)
    _, body = await hub.call("GET", "/api/v1/spaces")
    assert set(body) == {"spaces"} and len(body["spaces"]) == 4


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/spaces"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page starts at 1; per_page is 1 to 500"),
        ("per_page=501", "page starts at 1; per_page is 1 to 500"),
        ("per_page=0", "page starts at 1; per_page is 1 to 500"),
        ("page=x", "page and per_page must be whole numbers"),
    ],
)
async def test_bad_pages_refused(hub: Hub, path: str, query: str, message: str):
    assert await hub.call("GET", f"{path}?{query}") == (400, err(message))

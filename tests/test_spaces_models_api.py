"""Spaces and models over the real HTTP API."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from amphub import db
from amphub.http import keys
from tests.conftest import GIB, FakeClock, Hub, git, start_hub

UNIT = 10 * GIB
SIGN_IN = "sign in with your user name and key"
QUOTA_RULE = f"quota must be a positive multiple of the quota unit ({UNIT} bytes)"
SPACE_RULE = (
    "a space id is 2 to 63 characters of lowercase letters a-z, digits and '-',"
    " starting with a letter or digit"
)
MODEL_RULE = (
    "a model id is 1 to 96 characters of ASCII letters, digits, '.', '_' and '-',"
    " starting with a letter or digit and not ending in '.git'"
)
ALL_MODEL_PERMISSIONS = ["delete", "edit", "read_files", "retrieve", "view", "write_files"]
READER_PERMISSIONS = ["read_files", "retrieve", "view"]
MIB = 1024 * 1024


def err(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


async def raw(
    hub: Hub, method: str, path: str, key: str | None = None, **kwargs: Any
) -> tuple[int, Any, Any]:
    """A request with a Bearer key or none at all: status, body, headers."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with hub.session.request(method, hub.base + path, headers=headers, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp.headers


def space_body(**fields: Any) -> dict:
    return {"name": "Team", "quota": UNIT, "billing_mode": "monthly", **fields}


START = datetime(2024, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def clocked_hub(tmp_path: Path, clock: FakeClock):
    """A hub whose application clock is `clock`."""
    server, key = await start_hub(tmp_path / "data", clock)
    async with aiohttp.ClientSession() as session:
        yield Hub(server, session, key, tmp_path / "data")
    await server.close()


@pytest.fixture
async def people(hub: Hub) -> Hub:
    """`ada` may create spaces, `bob` is a plain user; the admin has a space `team`."""
    await hub.user("ada", creator=True)
    await hub.user("bob")
    await hub.space("team")
    return hub


# Creating spaces


@pytest.mark.parametrize(
    ("billing", "period", "expires_at"),
    [
        ("monthly", None, "2024-02-29T12:00:00Z"),  # the month's last day where it is shorter
        ("monthly", 1, "2024-02-29T12:00:00Z"),
        ("monthly", 3, "2024-04-30T12:00:00Z"),
        ("monthly", 13, "2025-02-28T12:00:00Z"),
        ("yearly", None, "2025-01-31T12:00:00Z"),
        ("yearly", 2, "2026-01-31T12:00:00Z"),
        ("pay_as_you_go", None, None),
        ("pay_as_you_go", 5, None),
    ],
)
async def test_space_expiration_from_billing_mode_and_period(
    clocked_hub, billing, period, expires_at
):
    extra = {} if period is None else {"period": period}
    space = await clocked_hub.space("team", billing_mode=billing, quota=3 * UNIT, **extra)
    assert space == {
        "id": "team",
        "name": "Team",
        "quota": 3 * UNIT,
        "used": 0,
        "models": 0,
        "my_used": 0,
        "my_models": 0,
        "billing_mode": billing,
        "status": "in_use",
        "expires_at": expires_at,
        "creator": "admin",
        "created_at": "2024-01-31T12:00:00Z",
    }
    status, again = await clocked_hub.call("GET", "/api/v1/spaces/team")
    assert (status, again) == (200, space)


async def test_space_status_follows_the_clock(clocked_hub, clock):
    await clocked_hub.space("team")  # expires 2024-02-29T12:00:00Z
    expires = datetime(2024, 2, 29, 12, tzinfo=UTC)
    for moment, status in [
        (expires - timedelta(seconds=1), "in_use"),
        (expires, "grace_period"),
        (expires + timedelta(days=7), "retention_period"),
    ]:
        clock.now = moment
        _, space = await clocked_hub.call("GET", "/api/v1/spaces/team")
        assert space["status"] == status, moment
    clock.now = expires + timedelta(days=22)  # released: gone
    assert await clocked_hub.call("GET", "/api/v1/spaces/team") == (
        404,
        err("not_found", "no space team"),
    )


async def test_space_id_generated_from_unicode_name(people):
    hub = people
    first = await hub.call("POST", "/api/v1/spaces", json=space_body(name="Vision 团队"))
    assert first[0] == 201
    assert (first[1]["id"], first[1]["name"]) == ("vision", "Vision 团队")
    second = await hub.call("POST", "/api/v1/spaces", json=space_body(name="Vision 团队"))
    assert second[0] == 201
    assert re.fullmatch(r"vision-[0-9a-f]{6}", second[1]["id"]), second[1]
    assert second[1]["name"] == "Vision 团队"
    for _ in range(2):
        status, body = await hub.call("POST", "/api/v1/spaces", json=space_body(name="视觉团队"))
        assert status == 201
        assert re.fullmatch(r"space-[0-9a-f]{6}", body["id"]), body
        assert body["name"] == "视觉团队"
    status, body = await hub.call("POST", "/api/v1/spaces", json=space_body(name="Ünïcode Çafé"))
    assert (status, body["id"]) == (201, "unicode-cafe")
    status, listing = await hub.call("GET", "/api/v1/spaces")
    assert len({s["id"] for s in listing["spaces"]}) == 6  # team + the five above


async def test_space_creator_role_needed(people):
    hub = people
    status, body = await hub.call("POST", "/api/v1/spaces", user="ada", json=space_body(id="lab"))
    assert (status, body["id"], body["creator"]) == (201, "lab", "ada")
    status, body = await hub.call("POST", "/api/v1/spaces", user="bob", json=space_body(id="x1"))
    assert (status, body) == (403, err("forbidden", "you may not create space"))
    status, body, headers = await raw(hub, "POST", "/api/v1/spaces", json=space_body(id="x2"))
    assert (status, body) == (401, err("unauthorized", SIGN_IN))
    assert headers["WWW-Authenticate"].startswith('Basic realm="amphub"')
    # Granting the role lets bob create one.
    await hub.call("PATCH", "/api/v1/users/bob", json={"creator": True})
    status, body = await hub.call("POST", "/api/v1/spaces", user="bob", json=space_body(id="x3"))
    assert (status, body["creator"]) == (201, "bob")


SPACE_ERRORS = [
    (space_body(quota=0), 400, "bad_request", QUOTA_RULE),
    (space_body(quota=-UNIT), 400, "bad_request", QUOTA_RULE),
    (space_body(quota=UNIT + 1), 400, "bad_request", QUOTA_RULE),
    (space_body(quota=UNIT // 2), 400, "bad_request", QUOTA_RULE),
    (space_body(quota=str(UNIT)), 400, "bad_request", "field 'quota' must be int"),
    (space_body(quota=float(UNIT)), 400, "bad_request", "field 'quota' must be int"),
    (space_body(quota=True), 400, "bad_request", "field 'quota' must be int"),
    ({"name": "Team", "billing_mode": "monthly"}, 400, "bad_request", "missing field 'quota'"),
    (
        space_body(billing_mode="weekly"),
        400,
        "bad_request",
        "billing_mode must be one of monthly, yearly, pay_as_you_go",
    ),  # fmt: skip
    (
        space_body(billing_mode="Monthly"),
        400,
        "bad_request",
        "billing_mode must be one of monthly, yearly, pay_as_you_go",
    ),  # fmt: skip
    ({"name": "Team", "quota": UNIT}, 400, "bad_request", "missing field 'billing_mode'"),
    (space_body(period=0), 400, "bad_request", "period must be 1 to 100"),
    (space_body(period=-1), 400, "bad_request", "period must be 1 to 100"),
    (space_body(period=101), 400, "bad_request", "period must be 1 to 100"),
    (space_body(period="2"), 400, "bad_request", "field 'period' must be int"),
    ({"quota": UNIT, "billing_mode": "monthly"}, 400, "bad_request", "missing field 'name'"),
    (space_body(name=""), 400, "invalid_name", "a display name is 1 to 200 characters"),
    (space_body(name="x" * 201), 400, "invalid_name", "a display name is 1 to 200 characters"),
    (
        space_body(name="a\x00b"),
        400,
        "invalid_name",
        "a display name may not contain control characters",
    ),  # fmt: skip
    (space_body(id="team"), 409, "conflict", "space team exists already"),
] + [
    (space_body(id=space_id), 400, "invalid_name", f"invalid space id {space_id!r}: {SPACE_RULE}")
    for space_id in ("Team", "a", "-ab", "a_b", "a.b", "a" * 64, "团队", "../x")
]


@pytest.mark.parametrize(("body", "status", "code", "message"), SPACE_ERRORS)
async def test_create_space_errors(people, body, status, code, message):
    assert await people.call("POST", "/api/v1/spaces", json=body) == (status, err(code, message))


async def test_space_id_limits_accepted(people):
    for space_id in ("ab", "a" * 63, "0-9", "ab-"):
        status, body = await people.call("POST", "/api/v1/spaces", json=space_body(id=space_id))
        assert (status, body.get("id")) == (201, space_id), body


# Listing spaces and usage


async def test_spaces_listed_only_to_those_who_may_use_them(people):
    hub = people
    await hub.space("lab", owner="ada")
    status, body = await hub.call("GET", "/api/v1/spaces", user="ada")
    assert (status, [s["id"] for s in body["spaces"]]) == (200, ["lab"])
    status, body = await hub.call("GET", "/api/v1/spaces", user="bob")
    assert (status, body) == (200, {"spaces": []})
    status, body = await hub.call("GET", "/api/v1/spaces")
    assert (status, [s["id"] for s in body["spaces"]]) == (200, ["lab", "team"])
    # A member of a space may use it.
    status, _ = await hub.call("PUT", "/api/v1/spaces/team/members/bob", json={"role": "user"})
    assert status == 200
    status, body = await hub.call("GET", "/api/v1/spaces", user="bob")
    assert (status, [s["id"] for s in body["spaces"]]) == (200, ["team"])
    assert (body["spaces"][0]["my_models"], body["spaces"][0]["creator"]) == (0, "admin")
    status, body, headers = await raw(hub, "GET", "/api/v1/spaces")
    assert (status, body) == (401, err("unauthorized", SIGN_IN))
    assert "WWW-Authenticate" in headers
    # A space one may not use does not show even when asked for by id.
    assert await hub.call("GET", "/api/v1/spaces/team", user="ada") == (
        404,
        err("not_found", "no space team"),
    )
    assert await hub.call("GET", "/api/v1/spaces/nope") == (404, err("not_found", "no space nope"))
    status, body, _ = await raw(hub, "GET", "/api/v1/spaces/team")
    assert (status, body) == (401, err("unauthorized", SIGN_IN))


async def test_space_usage_grows_after_push_and_counts_mine(people, tmp_path):
    hub = people
    await hub.space("lab", owner="ada")
    await hub.model("lab", "m-ada", owner="ada")
    await hub.model("lab", "m-admin", owner="admin")
    _, before = await hub.call("GET", "/api/v1/spaces/lab", user="ada")
    assert (before["models"], before["my_models"]) == (2, 1)
    assert 0 < before["my_used"] < before["used"]

    work = tmp_path / "work"
    await git("clone", hub.remote("lab", "m-ada", "ada"), str(work))
    (work / "data.txt").write_bytes(os.urandom(256 * 1024))
    await git("add", "data.txt", cwd=work)
    await git("commit", "-q", "-m", "data", cwd=work)
    await git("push", "-q", cwd=work)

    _, ada_view = await hub.call("GET", "/api/v1/spaces/lab", user="ada")
    _, admin_view = await hub.call("GET", "/api/v1/spaces/lab")
    assert ada_view["used"] >= before["used"] + 250 * 1024
    assert ada_view["my_used"] >= before["my_used"] + 250 * 1024
    assert (ada_view["models"], ada_view["my_models"]) == (2, 1)
    assert (admin_view["models"], admin_view["my_models"]) == (2, 1)
    assert admin_view["used"] == ada_view["used"]
    assert admin_view["my_used"] + ada_view["my_used"] == ada_view["used"]
    _, listing = await hub.call("GET", "/api/v1/spaces", user="ada")
    assert listing["spaces"] == [ada_view]
    _, model = await hub.call("GET", "/api/v1/models/lab/m-ada", user="ada")
    assert model["size"] == ada_view["my_used"]


# Creating and showing models


async def test_create_model(people):
    hub = people
    status, model = await hub.call(
        "POST", "/api/v1/spaces/team/models", json={"id": "gpt2", "name": "gpt2-大"}
    )
    assert status == 201
    assert model["url"] == f"{hub.base}/team/gpt2.git"
    assert {k: model[k] for k in ("space", "id", "name", "visibility", "owner")} == {
        "space": "team",
        "id": "gpt2",
        "name": "gpt2-大",
        "visibility": "private",
        "owner": "admin",
    }
    assert model["permissions"] == ALL_MODEL_PERMISSIONS
    assert model["size"] > 0
    assert model["created_at"] == model["updated_at"]
    status, shown = await hub.call("GET", "/api/v1/models/team/gpt2")
    assert status == 200
    assert shown["name"] == "gpt2-大"
    assert {k: shown[k] for k in model} == model

    # Without a name the id is the name; another owner in another space.
    await hub.space("lab", owner="ada")
    status, model = await hub.call(
        "POST", "/api/v1/spaces/lab/models", user="ada", json={"id": "A" * 96}
    )
    assert status == 201
    assert (model["name"], model["owner"], model["url"]) == (
        "A" * 96,
        "ada",
        f"{hub.base}/lab/{'A' * 96}.git",
    )


@pytest.mark.parametrize("visibility", ["private", "internal", "public"])
async def test_create_model_with_visibility(people, visibility):
    status, model = await people.call(
        "POST", "/api/v1/spaces/team/models", json={"id": "m", "visibility": visibility}
    )
    assert (status, model["visibility"]) == (201, visibility)


MODEL_ERRORS = [
    ({"id": "m1"}, 409, "conflict", "model team/m1 exists already"),
    ({"id": "M1"}, 409, "conflict", "model team/M1 exists already"),
    ({"name": "no id"}, 400, "bad_request", "missing field 'id'"),
    ({"id": 7}, 400, "bad_request", "field 'id' must be str"),
    (
        {"id": "m2", "visibility": "secret"},
        400,
        "bad_request",
        "visibility must be one of private, internal, public",
    ),  # fmt: skip
    (
        {"id": "m2", "visibility": "Public"},
        400,
        "bad_request",
        "visibility must be one of private, internal, public",
    ),  # fmt: skip
    (
        {"id": "m2", "name": "x" * 201},
        400,
        "invalid_name",
        "a display name is 1 to 200 characters",
    ),  # fmt: skip
    ({"id": "m2", "name": "  "}, 400, "invalid_name", "a display name is 1 to 200 characters"),
] + [
    ({"id": model_id}, 400, "invalid_name", f"invalid model id {model_id!r}: {MODEL_RULE}")
    for model_id in (
        "../x",
        "a/b",
        "x.git",
        "X.GIT",
        "x.Git",
        "a" * 97,
        "gpt2-大",
        "-x",
        ".x",
        "_x",
        "",
        "a b",
        "a\\b",
    )
]


@pytest.mark.parametrize(("body", "status", "code", "message"), MODEL_ERRORS)
async def test_create_model_errors(people, body, status, code, message):
    await people.model("team", "m1")
    answer = await people.call("POST", "/api/v1/spaces/team/models", json=body)
    assert answer == (status, err(code, message))
    # Nothing was created by the refused request.
    _, space = await people.call("GET", "/api/v1/spaces/team")
    assert space["models"] == 1


TOO_LARGE = err("payload_too_large", "a JSON body may be at most 1048576 bytes")


async def _chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


# (who, space, request keyword arguments, status, error body)
REQUEST_ERRORS = [
    ("admin", "nope", {"json": {"id": "m"}}, 404, err("not_found", "no space nope")),
    ("bob", "team", {"json": {"id": "m"}}, 404, err("not_found", "no space team")),
    ("ada", "team", {"json": {"id": "m"}}, 404, err("not_found", "no space team")),
    (None, "team", {"json": {"id": "m"}}, 401, err("unauthorized", SIGN_IN)),
    (None, "nope", {"json": {"id": "m"}}, 401, err("unauthorized", SIGN_IN)),
    (
        "admin",
        "team",
        {"data": b"not json"},
        400,
        err("bad_request", "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ),  # fmt: skip  # noqa: E501
    ("admin", "team", {"data": b"\xff\xfe{}"}, 400, None),
    ("admin", "team", {"data": b"[" * 500_000}, 400, None),  # nested too deeply
    (
        "admin",
        "team",
        {"json": [{"id": "m"}]},
        400,
        err("bad_request", "the body must be a JSON object"),
    ),  # fmt: skip
    ("admin", "team", {"json": "m"}, 400, err("bad_request", "the body must be a JSON object")),
    ("admin", "team", {"data": b"{" + b" " * MIB + b"}"}, 413, TOO_LARGE),
    ("admin", "team", {"data": b"x" * (MIB + 1)}, 413, TOO_LARGE),
]


@pytest.mark.parametrize(("who", "space", "kwargs", "status", "body"), REQUEST_ERRORS)
async def test_create_model_request_errors(people, who, space, kwargs, status, body):
    key = None if who is None else people.admin_key if who == "admin" else people.keys[who]
    got_status, got, headers = await raw(
        people, "POST", f"/api/v1/spaces/{space}/models", key, **kwargs
    )
    assert got_status == status, got
    if body is None:
        assert got["error"]["code"] == "bad_request", got
        assert got["error"]["message"].startswith("the body is not valid JSON"), got
    else:
        assert got == body
    if status == 401:
        assert headers["WWW-Authenticate"].startswith('Basic realm="amphub"')


async def test_body_over_one_mib_without_length_is_413(people):
    # Sent chunked, with no Content-Length: the limit must hold while reading.
    body = b'{"id": "m", "pad": "' + b"x" * MIB + b'"}'
    status, got, _ = await raw(
        people, "POST", "/api/v1/spaces/team/models", people.admin_key, data=_chunks(body)
    )
    assert (status, got) == (413, TOO_LARGE)


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
@pytest.mark.parametrize("size", [200 * 1024, MIB - 100], ids=["200KiB", "1MiB-100"])
async def test_large_body_under_the_limit_is_read_whole(people, chunked, size):
    body = b'{"id": "m", "pad": "' + b"x" * size + b'"}'
    assert len(body) <= MIB
    data = _chunks(body) if chunked else body
    status, got, _ = await raw(
        people, "POST", "/api/v1/spaces/team/models", people.admin_key, data=data
    )
    # Read and parsed whole: the refusal names the padding field at its end.
    assert (status, got["error"]["message"].split(";")[0]) == (400, "unknown field 'pad'"), got


async def test_get_model_private_hidden_from_others(people):
    hub = people
    await hub.model("team", "m1")
    status, body = await hub.call("GET", "/api/v1/models/team/m1")
    assert (status, body["id"], body["owner"]) == (200, "m1", "admin")

    hidden = await hub.call("GET", "/api/v1/models/team/m1", user="bob")
    missing = await hub.call("GET", "/api/v1/models/team/m2", user="bob")
    assert hidden == (404, err("not_found", "no model team/m1"))
    assert missing == (404, err("not_found", "no model team/m2"))
    assert await hub.call("GET", "/api/v1/models/nope/m1") == (
        404,
        err("not_found", "no model nope/m1"),
    )

    for path in ("/api/v1/models/team/m1", "/api/v1/models/team/m2", "/api/v1/models/nope/m1"):
        status, body, headers = await raw(hub, "GET", path)
        assert (status, body) == (401, err("unauthorized", SIGN_IN)), path
        assert headers["WWW-Authenticate"].startswith('Basic realm="amphub"')


async def test_model_owner_in_others_space(people):
    hub = people
    await hub.space("lab", owner="ada")
    await hub.model("lab", "m1", owner="ada")
    status, body = await hub.call("GET", "/api/v1/models/lab/m1", user="ada")
    assert (status, body["owner"], body["permissions"]) == (200, "ada", ALL_MODEL_PERMISSIONS)
    status, body = await hub.call("GET", "/api/v1/models/lab/m1")  # the administrator
    assert (status, body["permissions"]) == (200, ALL_MODEL_PERMISSIONS)
    assert await hub.call("GET", "/api/v1/models/lab/m1", user="bob") == (
        404,
        err("not_found", "no model lab/m1"),
    )


async def test_public_model_visible_to_everyone(people):
    hub = people
    await hub.model("team", "pub", visibility="public")
    status, body, _ = await raw(hub, "GET", "/api/v1/models/team/pub")
    assert status == 200
    assert (body["visibility"], body["permissions"]) == ("public", READER_PERMISSIONS)
    status, body = await hub.call("GET", "/api/v1/models/team/pub", user="bob")
    assert (status, body["permissions"]) == (200, READER_PERMISSIONS)


async def test_internal_model_visible_to_signed_in_users_only(people):
    hub = people
    await hub.model("team", "int", visibility="internal")
    status, body = await hub.call("GET", "/api/v1/models/team/int", user="bob")
    assert status == 200
    assert (body["visibility"], body["permissions"]) == ("internal", READER_PERMISSIONS)
    status, body, headers = await raw(hub, "GET", "/api/v1/models/team/int")
    assert (status, body) == (401, err("unauthorized", SIGN_IN))
    assert "WWW-Authenticate" in headers


async def test_a_model_whose_repository_is_still_being_made_answers_as_empty(hub):
    await hub.space_and_model("team", "m1")
    # The moment between a creation's row and its repository, held still.
    await db.insert_model(hub.server.app[keys.HUB].db, "team", "m2", "m2", "private", "admin")
    status, model = await hub.call("GET", "/api/v1/models/team/m2")
    assert status == 200, model
    assert model["size"] == 0
    assert model["refs"] == {"branches": [], "tags": []}

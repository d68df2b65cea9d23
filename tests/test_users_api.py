"""Users, keys and sign-in over the real HTTP API."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from tests.conftest import FakeClock, Hub, running_hub

SIGN_IN = "sign in with your user name and key"
WRONG_KEY = "authentication failed: wrong user name or key"
USE_BASIC = "use HTTP Basic with user name and key, or Bearer with a key"
USER_RULE = (
    "a user name is 1 to 39 characters of lowercase letters a-z, digits, '.', '_' and '-',"
    " starting with a letter or digit"
)


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


def err(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


async def raw(
    hub: Hub, method: str, path: str, authorization: str | None = None, json: Any = None
) -> tuple[int, Any, Any]:
    """A request with exactly this Authorization header (or none): status, body, headers."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with hub.session.request(method, hub.base + path, headers=headers, json=json) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp.headers


def assert_challenge(headers: Any) -> None:
    assert headers["WWW-Authenticate"].startswith('Basic realm="amphub"')


@pytest.fixture
async def bob(hub: Hub) -> str:
    """A plain user: neither administrator nor space creator."""
    return await hub.user("bob")


# /api/v1/me and keys


async def test_me_with_basic_and_with_bearer(hub, bob):
    for authorization in (basic("bob", bob), f"Bearer {bob}", "basic " + basic("bob", bob)[6:]):
        status, body, _ = await raw(hub, "GET", "/api/v1/me", authorization)
        assert status == 200, (authorization, body)
        assert {k: body[k] for k in ("name", "admin", "creator")} == {
            "name": "bob",
            "admin": False,
            "creator": False,
        }
        assert body["created_at"].endswith("Z")
    status, body, _ = await raw(hub, "GET", "/api/v1/me", basic("admin", hub.admin_key))
    assert status == 200
    assert (body["name"], body["admin"], body["creator"]) == ("admin", True, True)


async def test_new_own_key_old_fails_at_once_new_works(hub, bob):
    status, body = await hub.call("POST", "/api/v1/me/key", user="bob")
    assert status == 200
    new = body["key"]
    assert new != bob
    status, body, headers = await raw(hub, "GET", "/api/v1/me", f"Bearer {bob}")
    assert (status, body) == (401, err("unauthorized", WRONG_KEY))
    assert_challenge(headers)
    status, body, _ = await raw(hub, "GET", "/api/v1/me", basic("bob", bob))
    assert (status, body) == (401, err("unauthorized", WRONG_KEY))
    for authorization in (f"Bearer {new}", basic("bob", new)):
        status, body, _ = await raw(hub, "GET", "/api/v1/me", authorization)
        assert (status, body["name"]) == (200, "bob")


# Administration


async def test_admin_creates_lists_patches_and_rekeys_users(hub):
    status, created = await hub.call("POST", "/api/v1/users", json={"name": "ada", "creator": True})
    assert status == 201
    assert (created["name"], created["admin"], created["creator"]) == ("ada", False, True)
    ada = created["key"]
    assert ada.startswith("amp_")

    status, me, _ = await raw(hub, "GET", "/api/v1/me", basic("ada", ada))
    assert (status, me["name"], me["creator"]) == (200, "ada", True)

    status, listing = await hub.call("GET", "/api/v1/users")
    assert status == 200
    assert [u["name"] for u in listing["users"]] == ["ada", "admin"]
    for user in listing["users"]:
        assert not {"key", "key_hash"} & set(user), user

    status, patched = await hub.call("PATCH", "/api/v1/users/ada", json={"admin": True})
    assert status == 200
    assert (patched["name"], patched["admin"], patched["creator"]) == ("ada", True, True)
    status, _, _ = await raw(hub, "GET", "/api/v1/users", f"Bearer {ada}")
    assert status == 200

    status, patched = await hub.call(
        "PATCH", "/api/v1/users/ada", json={"admin": False, "creator": False}
    )
    assert (status, patched["admin"], patched["creator"]) == (200, False, False)
    status, body, _ = await raw(hub, "GET", "/api/v1/users", f"Bearer {ada}")
    assert (status, body) == (403, err("forbidden", "you may not manage users"))

    status, body = await hub.call("POST", "/api/v1/users/ada/key")
    assert status == 200
    assert body["key"] != ada
    status, answer, _ = await raw(hub, "GET", "/api/v1/me", f"Bearer {ada}")
    assert (status, answer) == (401, err("unauthorized", WRONG_KEY))
    status, answer, _ = await raw(hub, "GET", "/api/v1/me", f"Bearer {body['key']}")
    assert (status, answer["name"]) == (200, "ada")


async def test_disabled_user_refused_with_message_then_reenabled(hub, bob):
    status, body = await hub.call("PATCH", "/api/v1/users/bob", json={"disabled": True})
    assert (status, body["disabled"]) == (200, True)
    for authorization in (f"Bearer {bob}", basic("bob", bob)):
        status, body, _ = await raw(hub, "GET", "/api/v1/me", authorization)
        assert (status, body) == (
            403,
            err("forbidden", "the account bob is disabled; ask an administrator"),
        )
    status, body = await hub.call("PATCH", "/api/v1/users/bob", json={"disabled": False})
    assert (status, body["disabled"]) == (200, False)
    status, body, _ = await raw(hub, "GET", "/api/v1/me", f"Bearer {bob}")
    assert (status, body["name"]) == (200, "bob")


ANON = ""  # no credentials at all

# (who, method, path, json, status, code, message)
ERROR_CASES = [
    # anonymous: 401 with the Basic challenge
    (ANON, "GET", "/api/v1/me", None, 401, "unauthorized", SIGN_IN),
    (ANON, "POST", "/api/v1/me/key", None, 401, "unauthorized", SIGN_IN),
    (ANON, "GET", "/api/v1/users", None, 401, "unauthorized", SIGN_IN),
    (ANON, "POST", "/api/v1/users", {"name": "eve"}, 401, "unauthorized", SIGN_IN),
    (ANON, "PATCH", "/api/v1/users/bob", {"admin": True}, 401, "unauthorized", SIGN_IN),
    (ANON, "POST", "/api/v1/users/bob/key", None, 401, "unauthorized", SIGN_IN),
    # a signed-in user who is not an administrator
    ("bob", "GET", "/api/v1/users", None, 403, "forbidden", "you may not manage users"),
    ("bob", "POST", "/api/v1/users", {"name": "eve"}, 403, "forbidden", "you may not manage users"),
    (
        "bob",
        "PATCH",
        "/api/v1/users/bob",
        {"admin": True},
        403,
        "forbidden",
        "you may not manage users",
    ),  # noqa: E501
    ("bob", "POST", "/api/v1/users/admin/key", None, 403, "forbidden", "you may not manage users"),
    # administrator, bad requests
    ("admin", "POST", "/api/v1/users", {"name": "bob"}, 409, "conflict", "user bob exists already"),
    (
        "admin",
        "POST",
        "/api/v1/users",
        {"name": "admin"},
        409,
        "conflict",
        "user admin exists already",
    ),  # noqa: E501
    ("admin", "POST", "/api/v1/users", {}, 400, "bad_request", "missing field 'name'"),
    ("admin", "POST", "/api/v1/users", {"name": 5}, 400, "bad_request", "field 'name' must be str"),
    (
        "admin",
        "POST",
        "/api/v1/users",
        {"name": "eve", "admin": "yes"},
        400,
        "bad_request",
        "field 'admin' must be bool",
    ),  # noqa: E501
    (
        "admin",
        "PATCH",
        "/api/v1/users/bob",
        {"disabled": 1},
        400,
        "bad_request",
        "field 'disabled' must be bool",
    ),  # noqa: E501
    ("admin", "PATCH", "/api/v1/users/nobody", {"admin": True}, 404, "not_found", "no user nobody"),
    # an administrator cannot lock themselves out: another one must do it
    (
        "admin",
        "PATCH",
        "/api/v1/users/admin",
        {"creator": False, "admin": False},
        403,
        "forbidden",
        "you cannot take your own administrator role; another administrator can",
    ),
    (
        "admin",
        "PATCH",
        "/api/v1/users/admin",
        {"disabled": True},
        403,
        "forbidden",
        "you cannot disable yourself; another administrator can",
    ),
    ("admin", "POST", "/api/v1/users/nobody/key", None, 404, "not_found", "no user nobody"),
] + [
    (
        "admin",
        "POST",
        "/api/v1/users",
        {"name": name},
        400,
        "invalid_name",
        f"invalid user name {name!r}: {USER_RULE}",
    )  # fmt: skip
    for name in ("", "Bob", "-bob", ".bob", "b b", "bob:x", "bób", "a" * 40, "bob/x", "bob\n")
]


@pytest.mark.parametrize(
    ("who", "method", "path", "json", "status", "code", "message"), ERROR_CASES
)
async def test_user_api_errors(hub, bob, who, method, path, json, status, code, message):
    authorization = None if who == ANON else f"Bearer {hub.admin_key if who == 'admin' else bob}"
    got_status, body, headers = await raw(hub, method, path, authorization, json=json)
    assert (got_status, body) == (status, err(code, message))
    if status == 401:
        assert_challenge(headers)


async def test_refused_self_change_changes_nothing_and_another_admin_may(hub):
    await hub.call("PATCH", "/api/v1/users/admin", json={"creator": False, "admin": False})
    status, me = await hub.call("GET", "/api/v1/me")
    assert (status, me["admin"], me["creator"], me["disabled"]) == (200, True, True, False)
    await hub.user("root2", admin=True)
    status, admin = await hub.call(
        "PATCH", "/api/v1/users/admin", json={"admin": False, "disabled": True}, user="root2"
    )
    assert (status, admin["admin"], admin["disabled"]) == (200, False, True)


async def test_user_name_limits_accepted(hub):
    for name in ("a", "a" * 39, "a.b_c-d", "0x"):
        status, body = await hub.call("POST", "/api/v1/users", json={"name": name})
        assert (status, body.get("name")) == (201, name), body


# Malformed or wrong credentials


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# (case id, Authorization header from the admin key, message)
BAD_AUTHORIZATION: list[tuple[str, Callable[[str], str], str]] = [
    ("garbage scheme", lambda key: f"Garbage {key}", USE_BASIC),
    ("scheme only", lambda key: "Basic", USE_BASIC),
    ("digest scheme", lambda key: f'Digest username="admin", response="{key}"', USE_BASIC),
    ("bad base64", lambda key: "Basic !!!not-base64!!!", "malformed Basic credentials"),
    ("not utf-8", lambda key: "Basic " + _b64(b"admin:\xff\xfe"), "malformed Basic credentials"),
    ("no colon", lambda key: "Basic " + _b64(key.encode()), USE_BASIC),
    ("empty key", lambda key: "Basic " + _b64(b"admin:"), USE_BASIC),
    ("empty bearer", lambda key: "Bearer ", USE_BASIC),
    ("right key, other user", lambda key: basic("bob", key), WRONG_KEY),
    ("right key, unknown user", lambda key: basic("nobody", key), WRONG_KEY),
    ("right key, name in capitals", lambda key: basic("ADMIN", key), WRONG_KEY),
    ("wrong key", lambda key: basic("admin", key + "x"), WRONG_KEY),
    ("wrong bearer", lambda key: f"Bearer {key[:-1]}", WRONG_KEY),
]


@pytest.mark.parametrize(
    ("make_header", "message"),
    [(make, message) for _, make, message in BAD_AUTHORIZATION],
    ids=[case for case, _, _ in BAD_AUTHORIZATION],
)
async def test_malformed_or_wrong_authorization_is_401(hub, bob, make_header, message):
    status, body, headers = await raw(hub, "GET", "/api/v1/me", make_header(hub.admin_key))
    assert (status, body) == (401, err("unauthorized", message))
    assert_challenge(headers)


# Rate limit of failed sign-ins


async def test_eleventh_request_after_ten_failures_is_429_even_with_right_key(hub):
    for _ in range(10):
        status, _, _ = await raw(hub, "GET", "/api/v1/me", basic("admin", "amp_wrong"))
        assert status == 401
    status, body, headers = await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}")
    assert status == 429
    wait = int(headers["Retry-After"])
    assert 0 < wait <= 300
    assert body == err(
        "too_many_requests",
        f"too many failed sign-ins from your address; try again in {wait} seconds",
    )


async def test_nine_failures_do_not_lock_out(hub):
    for _ in range(9):
        status, _, _ = await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}x")
        assert status == 401
    status, body, _ = await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}")
    assert (status, body["name"]) == (200, "admin")


async def test_other_address_unaffected_over_http(hub):
    # Every 127/8 address is loopback on Linux: a client bound to 127.0.0.2 is another address.
    for _ in range(10):
        await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}x")
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with (
        aiohttp.ClientSession(connector=connector) as other,
        other.get(
            hub.base + "/api/v1/me", headers={"Authorization": f"Bearer {hub.admin_key}"}
        ) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["name"] == "admin"
    status, _, _ = await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}")
    assert status == 429


async def test_failed_sign_ins_window_opens_at_the_first_and_closes_after_five_minutes(tmp_path):
    clock = FakeClock()
    async with running_hub(tmp_path / "data", clock) as hub:
        for _ in range(10):
            assert (await raw(hub, "GET", "/api/v1/me", basic("admin", "amp_wrong")))[0] == 401
            clock.advance(seconds=1)  # failures at 0 … 9 s
        status, _, headers = await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}")
        assert (status, headers["Retry-After"]) == (429, "290")  # the window closes at 300 s
        clock.advance(seconds=289.5)
        status, _, headers = await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}")
        assert (status, headers["Retry-After"]) == (429, "1")
        clock.advance(seconds=0.5)
        assert (await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}"))[0] == 200
        # A failure after the window opens a new one: nine more are still allowed.
        for _ in range(9):
            assert (await raw(hub, "GET", "/api/v1/me", basic("admin", "amp_wrong")))[0] == 401
        assert (await raw(hub, "GET", "/api/v1/me", f"Bearer {hub.admin_key}"))[0] == 200


async def test_failed_sign_ins_of_closed_windows_are_deleted(tmp_path):
    clock = FakeClock()
    async with running_hub(tmp_path / "data", clock) as hub:
        await raw(hub, "GET", "/api/v1/me", basic("admin", "amp_wrong"))
        clock.advance(seconds=301)
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            await raw(replace(hub, session=other), "GET", "/api/v1/me", basic("admin", "x"))
        with sqlite3.connect(hub.data_dir / "amphub.db") as database:
            rows = database.execute("SELECT address, failures FROM failed_sign_ins").fetchall()
        assert rows == [("127.0.0.2", 1)]


# Bodies and routes the API does not know


async def test_a_misspelled_field_is_refused_and_nothing_is_made(hub):
    await hub.space("team")
    status, body = await hub.call(
        "POST", "/api/v1/spaces/team/models", json={"id": "m1", "visiblity": "public"}
    )
    assert (status, body) == (
        400,
        err("bad_request", "unknown field 'visiblity'; the fields here are id, name, visibility"),
    )
    assert (await hub.call("GET", "/api/v1/models/team/m1"))[0] == 404
    status, body = await hub.call("PATCH", "/api/v1/users/admin", json={"admn": True})
    assert (status, body) == (
        400,
        err("bad_request", "unknown field 'admn'; the fields here are admin, creator, disabled"),
    )


async def test_unknown_routes_and_methods_answer_in_the_api_shape(hub):
    status, body, headers = await raw(hub, "GET", "/api/v1/nothing-here")
    assert (status, body) == (
        404,
        err(
            "not_found", "no API route /api/v1/nothing-here; the routes are in /api/v1/openapi.json"
        ),
    )
    status, body, headers = await raw(hub, "DELETE", "/api/v1/me", f"Bearer {hub.admin_key}")
    assert (status, body) == (
        405,
        err("method_not_allowed", "DELETE is not allowed on /api/v1/me; allowed: GET, HEAD"),
    )
    assert sorted(m.strip() for m in headers["Allow"].split(",")) == ["GET", "HEAD"]

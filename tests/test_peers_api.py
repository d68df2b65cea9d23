"""Zones and deploy targets: the administrator's registry of peers, over the real API."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import Hub, read_from_outside, running_hub

ZONE = {
    "name": "eu-west",
    "url": "http://peer.example:8080/",
    "user": "syncer",
    "key": "s3cr3t-k3y",
}
TARGET = {"name": "serving", "url": "https://infer.example/deploy", "secret": "shared-s3cr3t"}
ROUTES = [("/api/v1/zones", ZONE, "zones"), ("/api/v1/deploy-targets", TARGET, "targets")]


@pytest.mark.parametrize(("path", "body", "listed"), ROUTES)
async def test_admin_adds_lists_and_removes(hub: Hub, path: str, body: dict, listed: str):
    status, created = await hub.call("POST", path, json=body)
    assert status == 201, created
    assert created["name"] == body["name"]
    assert created["url"] == body["url"].rstrip("/")
    status, answer = await hub.call("GET", path)
    assert status == 200
    assert [entry["name"] for entry in answer[listed]] == [body["name"]]
    message = f"{_what(path)} {body['name']} exists already"
    assert await hub.call("POST", path, json=body) == (
        409,
        {"error": {"code": "conflict", "message": message}},
    )
    assert (await hub.call("DELETE", f"{path}/{body['name']}"))[0] == 204
    assert (await hub.call("GET", path))[1][listed] == []
    status, answer = await hub.call("DELETE", f"{path}/{body['name']}")
    assert status == 404, answer


def _what(path: str) -> str:
    return "zone" if path.endswith("zones") else "deploy target"


@pytest.mark.parametrize(("path", "body", "listed"), ROUTES)
async def test_secrets_are_never_shown_and_sealed_at_rest(
    hub: Hub, path: str, body: dict, listed: str
):
    await hub.call("POST", path, json=body)
    secret = body.get("key") or body["secret"]
    _, answer = await hub.call("GET", path)
    assert secret not in str(answer)
    table = "zones" if listed == "zones" else "deploy_targets"
    (stored,) = await read_from_outside(hub.database_target, f"SELECT * FROM {table}")
    assert all(secret.encode() not in bytes(value) for value in stored if isinstance(value, bytes))
    assert secret not in "".join(str(value) for value in stored)


@pytest.mark.parametrize(("path", "body", "listed"), ROUTES)
async def test_only_administrators(hub: Hub, path: str, body: dict, listed: str):
    await hub.user("carol", creator=True)
    assert (await hub.call("GET", path, user=""))[0] == 401
    assert (await hub.call("GET", path, user="carol"))[0] == 403
    assert (await hub.call("POST", path, user="carol", json=body))[0] == 403
    await hub.call("POST", path, json=body)
    assert (await hub.call("DELETE", f"{path}/{body['name']}", user="carol"))[0] == 403
    assert [e["name"] for e in (await hub.call("GET", path))[1][listed]] == [body["name"]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "ftp://peer.example"}, "url must be an http:// or https:// address"),
        ({"url": "http://u:p@peer.example"}, "url may not carry credentials"),
        ({"url": "peer.example"}, "url must be an http:// or https:// address"),
        ({"name": "EU West"}, "invalid name 'EU West'"),
        ({"key": ""}, "key must be 1 to 4096 characters"),
        ({"user": None}, "missing field 'user'"),
    ],
)
async def test_malformed_zone_is_refused_with_the_reason(hub: Hub, change: dict, message: str):
    status, answer = await hub.call("POST", "/api/v1/zones", json={**ZONE, **change})
    assert status in (400, 422), answer
    assert message in answer["error"]["message"]
    assert (await hub.call("GET", "/api/v1/zones"))[1]["zones"] == []


async def test_the_zone_list_says_whether_each_zone_answers(hub: Hub, tmp_path: Path):
    closed, silent = socket.socket(), socket.socket()
    closed.bind(("127.0.0.1", 0))
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel accepts the connection; nobody ever reads the request
    closed_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    try:
        async with running_hub(tmp_path / "zone") as zone:
            key = await zone.user("syncer")
            zones = [
                ("near", zone.base, key),
                ("wrong-key", zone.base, "not-the-key"),
                ("closed", closed_url, key),
                ("silent", f"http://127.0.0.1:{silent.getsockname()[1]}", key),
            ]
            for name, url, with_key in zones:
                body = {"name": name, "url": url, "user": "syncer", "key": with_key}
                assert (await hub.call("POST", "/api/v1/zones", json=body))[0] == 201
            status, answer = await hub.call("GET", "/api/v1/zones")
            unchecked = await hub.call("GET", "/api/v1/zones?check=0")
            refused = await hub.call("GET", "/api/v1/zones?check=yes")
    finally:
        silent.close()
    # Names only: no zone was asked, so the silent one held nothing up.
    assert unchecked[0] == 200
    assert {(z["name"], z["answers"], z["no_answer"]) for z in unchecked[1]["zones"]} == {
        (name, None, None) for name, _, _ in zones
    }
    assert refused[0] == 400 and refused[1]["error"]["message"] == "check must be 0 or 1"
    assert status == 200, answer
    found = {z["name"]: (z["answers"], z["no_answer"]) for z in answer["zones"]}
    assert found["near"] == (True, None)
    assert found["wrong-key"] == (False, "refused: authentication failed: wrong user name or key")
    assert found["closed"] == (False, "connection refused")
    assert found["silent"] == (False, "it did not answer in time")

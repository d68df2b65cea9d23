"""The OpenAPI document of the JSON API: valid, complete, and no 500 on what it allows."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
from openapi_spec_validator import validate

from amphub.api.openapi import BODIES, api_routes
from tests.conftest import Hub, ServerProcess, git, push
from tests.samples import SEED

# Routes whose handler reads a JSON body, however it reaches json_object.
READS_BODY = ("json_object(", "queue_on_ref(", "_report(")


async def test_the_document_is_valid_openapi_and_lists_every_route(hub: Hub):
    status, document = await hub.call("GET", "/api/v1/openapi.json", user="")
    assert status == 200
    validate(document)  # raises on anything that is not OpenAPI 3.1
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": hub.base + "/api/v1"}]
    routes = api_routes(hub.server.app)
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert listed == {(method, path) for method, path, _, _ in routes}
    assert ("GET", "/openapi.json") in listed and ("PATCH", "/users/{name}") in listed
    # Every route that reads a body has it described, and every description a route.
    reading = {
        (method, path)
        for method, path, handler, _ in routes
        if any(call in inspect.getsource(handler) for call in READS_BODY)
    }
    assert reading == set(BODIES)
    user = document["paths"]["/users/{name}"]["patch"]
    assert user["parameters"][0]["schema"]["pattern"] == "^[a-z0-9._-]+$"
    assert (
        user["requestBody"]["content"]["application/json"]["schema"]["additionalProperties"]
        is False
    )


async def seed(hub: Hub, tmp_path: Path) -> dict[str, list]:
    """A space, models (README, branch, tag, LFS file), a user, a task and a deploy target:
    what the generated requests' path parameters are drawn from."""
    await hub.user("ada")
    await hub.space("team")
    await hub.model("team", "m1", visibility="public")
    await hub.model("team", "doomed")
    await git("lfs", "install", "--skip-repo")
    work = tmp_path / "m1"
    files = {"README.md": SEED, "weights.safetensors": b"\0" * 1024}
    await push(work, files, clone=hub.remote("team", "m1"), tag="v1")
    await push(work, {"notes.txt": "on dev\n"}, branch="dev")
    assert "weights.safetensors" in (await git("lfs", "ls-files", cwd=work)).stdout
    status, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
    assert status == 201, task
    peers = {
        "/deploy-targets": {"name": "serving", "url": "http://127.0.0.1:9", "secret": "s" * 32},
        "/zones": {"name": "east", "url": "http://127.0.0.1:9", "user": "sync", "key": "k"},
        "/upstreams": {"name": "hub", "url": "http://127.0.0.1:9", "space": "team"},
    }
    for path, body in peers.items():
        status, answer = await hub.call("POST", "/api/v1" + path, json=body)
        assert status == 201, answer
    return {
        "space": ["team"],
        "model": ["m1"],
        "rev": ["master", "dev", "v1"],
        "path": ["README.md", "weights.safetensors"],
        "user": ["ada", "admin"],
        "id": [task["id"]],
    }


# Operations whose path parameters name one kind of seeded object each.
AIMED = {
    "^/users/": {"path.name": "ada"},
    "^/deploy-targets/": {"path.name": "serving"},
    "^/zones/": {"path.name": "east"},
    "^/upstreams/": {"path.name": "hub"},
    "/tree/": {"path.path": ""},
}


def schemathesis_config(seeded: dict[str, list]) -> str:
    """Path parameters drawn from what was seeded most of the time; deletions aimed at the
    seeded objects that nothing else needs."""
    lines = []
    for name, values in seeded.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name in seeded:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.9 }}')
    lines.append("")
    for pattern, parameters in AIMED.items():
        fixed = ", ".join(f'"{name}" = "{value}"' for name, value in parameters.items())
        lines += [
            "[[operations]]",
            f"include-path-regex = '{pattern}'",
            f"parameters = {{ {fixed} }}",
        ]
    lines += [
        "[[operations]]",
        'include-name = "DELETE /models/{space}/{model}"',
        'parameters = { "path.model" = "doomed" }',
    ]
    return "\n".join(lines)


def operations_answered_2xx(reports: Path, document: dict) -> set[str]:
    """The operations that a request of the run's HAR reports got a 2xx answer from."""
    operations = []
    for path, methods in document["paths"].items():
        pattern = re.sub(r"\{(\w+)\}", lambda m: ".*" if m[1] == "path" else "[^/]+", path)
        for method in methods:
            operations.append((method.upper(), re.compile(f"^/api/v1{pattern}$"), path))
    found = set()
    for har in reports.glob("har-*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            if not 200 <= entry["response"]["status"] < 300:
                continue
            method, url = (
                entry["request"]["method"],
                unquote(urlsplit(entry["request"]["url"]).path),
            )
            for op_method, pattern, path in operations:
                if op_method == method and pattern.match(url):
                    found.add(f"{method} {path}")
                    break
    return found


async def test_generated_requests_never_meet_a_server_error(tmp_path: Path):
    # Wrong keys among the generated requests must not lock the run's address out.
    server = ServerProcess(tmp_path / "data", AMPHUB_SIGN_IN_LIMIT="1000000")
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            hub = Hub(None, session, server.key, server.data, url=server.url)
            seeded = await seed(hub, tmp_path)
            _, document = await hub.call("GET", "/api/v1/openapi.json")
        (tmp_path / "schemathesis.toml").write_text(schemathesis_config(seeded))
        fuzz = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {server.key}",
            # A new key for the admin would sign the rest of the run out.
            "--exclude-operation-id",
            "users.post_me_key",
            "--max-examples",
            "4",
            "--seed",
            "1",
            "--workers",
            "1",
            "--phases",
            "examples,fuzzing",
            "--report",
            "har",
            "--report-dir",
            str(tmp_path / "reports"),
            "--no-color",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        out, _ = await asyncio.wait_for(fuzz.communicate(), 240)
        report = out.decode(errors="replace")
        assert fuzz.returncode == 0, report[-6000:]
        # Every generated request was answered, none with a 5xx.
        assert re.search(r"Tested: 4\d\b", report), report[-3000:]
        assert re.search(r"(\d+) generated, \1 passed", report), report[-3000:]
        succeeded = operations_answered_2xx(tmp_path / "reports", document)
        print(f"operations with a 2xx answer: {len(succeeded)}")
        assert len(succeeded) >= 36, sorted(succeeded)  # 40 of the 47 at this writing
    finally:
        await server.stop()

"""The OpenAPI document of the JSON API: valid, complete, and no 500 on what it allows."""

from __future__ import annotations

import asyncio
import inspect
import re
import signal
import sys
from pathlib import Path

from openapi_spec_validator import validate

from amphub.api.openapi import BODIES, api_routes
from tests.conftest import Hub, free_port, read_until, start_server

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


async def test_generated_requests_never_meet_a_server_error(tmp_path: Path):
    port = free_port()
    server = await start_server(tmp_path / "data", port)
    try:
        lines = await read_until(server, "listening on")
        key = next(line.split(": ", 1)[1] for line in lines if line.startswith("administrator key"))
        base = f"http://127.0.0.1:{port}"
        fuzz = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {key}",
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
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)

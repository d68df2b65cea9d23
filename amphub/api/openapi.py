"""The OpenAPI 3.1 document of the JSON API, made from the routes the app serves.

Paths, methods, path parameters (with their regexes) and summaries (each handler's
docstring) come from the router, so a route cannot be left out; the request bodies and
query parameters, which the router does not know, are listed here, and a test checks
that every body-reading route has one.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web

from amphub import __version__
from amphub.http.urls import base_url

API = "/api/v1"
STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
VISIBILITY = {"type": "string", "enum": ["private", "internal", "public"]}
ROLE = {"type": "string"}
PAGING = {"page": INTEGER, "per_page": INTEGER}


def _object(required: tuple[str, ...] = (), **properties: dict) -> dict[str, Any]:
    """A JSON object of these fields and no others (the API refuses unknown fields)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


# The JSON body of each route that reads one, by method and path as the router has it.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/users"): _object(("name",), name=STRING, admin=BOOLEAN, creator=BOOLEAN),
    ("PATCH", "/users/{name}"): _object(admin=BOOLEAN, creator=BOOLEAN, disabled=BOOLEAN),
    ("POST", "/spaces"): _object(
        ("name", "quota", "billing_mode"),
        name=STRING,
        id=STRING,
        quota=INTEGER,
        billing_mode={"type": "string", "enum": ["monthly", "yearly", "pay_as_you_go"]},
        period=INTEGER,
    ),
    ("PATCH", "/spaces/{space}"): _object(("name",), name=STRING),
    ("POST", "/spaces/{space}/quota"): _object(("quota",), quota=INTEGER),
    ("POST", "/spaces/{space}/renew"): _object(period=INTEGER),
    ("POST", "/spaces/{space}/unsubscribe"): _object(("confirm",), confirm=STRING),
    ("PUT", "/spaces/{space}/members/{user}"): _object(("role",), role=ROLE),
    ("POST", "/spaces/{space}/models"): _object(
        ("id",), id=STRING, name=STRING, visibility=VISIBILITY
    ),
    ("PATCH", "/models/{space}/{model}"): _object(name=STRING, visibility=VISIBILITY),
    ("PUT", "/models/{space}/{model}/members/{user}"): _object(("role",), role=ROLE),
    ("POST", "/models/{space}/{model}/scans"): _object(ref=STRING),
    ("POST", "/models/{space}/{model}/syncs"): _object(("zone",), ref=STRING, zone=STRING),
    ("POST", "/models/{space}/{model}/deployments"): _object(
        ("target", "service"),
        ref=STRING,
        target=STRING,
        service=STRING,
        replicas=INTEGER,
        params={"type": "object"},
    ),
    ("POST", "/deployments/{id}/status"): {
        "type": "object",
        "description": "signed by the deploy target's secret (X-Amphub-Signature)",
        "properties": {
            "status": STRING,
            "ready_replicas": INTEGER,
            "instance": STRING,
            "message": STRING,
        },
    },
    ("POST", "/zones"): _object(
        ("name", "url", "user", "key"), name=STRING, url=STRING, user=STRING, key=STRING
    ),
    ("POST", "/deploy-targets"): _object(
        ("name", "url", "secret"), name=STRING, url=STRING, secret=STRING
    ),
    ("POST", "/upstreams"): _object(
        ("name", "url", "space"),
        name=STRING,
        url=STRING,
        space=STRING,
        token=STRING,
        visibility={"type": "string", "enum": ["private", "internal", "public"]},
    ),
    ("POST", "/upstreams/{name}/mirrors"): _object(
        ("repo",),
        repo=STRING,
        revision=STRING,
        refresh_hours={
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "refresh the revision every so many hours; 0 or null: never",
        },
    ),
}
# The query parameters of the lists, by path.
QUERIES: dict[str, dict[str, dict]] = {
    "/users": {**PAGING, "q": STRING},
    "/spaces": {**PAGING, "q": STRING},
    "/models": {
        **PAGING,
        **{
            name: STRING
            for name in ("q", "space", "framework", "task_type", "algorithm", "tag", "license")
        },
        "dataset": STRING,
    },
    "/tasks": {"kind": STRING, "status": STRING, "model": STRING},
    "/zones": {"check": {"type": "string", "enum": ["0", "1"]}},
    "/audit": {**PAGING},
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": STRING, "message": STRING},
        }
    },
}


def _operation(method: str, path: str, handler: Any, parameters: list[dict]) -> dict[str, Any]:
    doc = inspect.getdoc(handler) or ""
    operation: dict[str, Any] = {
        "operationId": f"{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}",
        "summary": doc.splitlines()[0] if doc else handler.__name__,
        "responses": {
            "2XX": {"description": "done", "content": {"application/json": {}}},
            "default": {
                "description": "refused: the error's code and a sentence for a person",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    query = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in QUERIES.get(path, {}).items()
    ]
    if parameters or (query and method == "GET"):
        operation["parameters"] = parameters + (query if method == "GET" else [])
    body = BODIES.get((method, path))
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def _group_patterns(pattern: str) -> dict[str, str]:
    """Each named group's regex in a route's compiled pattern: `(?P<rev>[^/]+)` → `[^/]+`."""
    found = {}
    for start in re.finditer(r"\(\?P<(\w+)>", pattern):
        depth, end = 1, start.end()
        while depth and end < len(pattern):
            if pattern[end] == "\\":
                end += 1
            elif pattern[end] == "(":
                depth += 1
            elif pattern[end] == ")":
                depth -= 1
            end += 1
        found[start.group(1)] = pattern[start.end() : end - 1]
    return found


def api_routes(app: web.Application) -> list[tuple[str, str, Any, list[dict]]]:
    """Each API route: method, path (after /api/v1), handler, path parameters with regexes."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if not path.startswith(API + "/") or route.method == "HEAD":
            continue
        compiled = info.get("pattern")
        patterns = _group_patterns(compiled.pattern) if compiled is not None else {}
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": f"^{regex}$"},
            }
            for name, regex in patterns.items()
        ]
        found.append((route.method, path.removeprefix(API), route.handler, parameters))
    return found


async def get_openapi(request: web.Request) -> web.Response:
    """This document: every route of the JSON API."""
    return web.json_response(document(request.app, base_url(request)))


def add_routes(app: web.Application) -> None:
    """The document's own route."""
    app.router.add_get(API + "/openapi.json", get_openapi)


def document(app: web.Application, server: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api/v1 route the app serves."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler, parameters in api_routes(app):
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, handler, parameters)
    return {
        "openapi": "3.1.0",
        "info": {"title": "amphub JSON API", "version": __version__},
        "servers": [{"url": server + API}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "key": {"type": "http", "scheme": "bearer", "description": "an amphub key"},
                "basic": {"type": "http", "scheme": "basic", "description": "user name and key"},
            },
        },
        "security": [{"key": []}, {"basic": []}, {}],
    }

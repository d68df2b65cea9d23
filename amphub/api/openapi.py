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
from amphub.api.models import GRANTABLE_MODEL_ROLES
from amphub.api.tasks import KINDS, STATES
from amphub.http import keys
from amphub.http.urls import base_url
from amphub.policy.names import DISPLAY_NAME_MAX, MODEL_ID, PEER_NAME, SPACE_ID, USER_NAME
from amphub.services.mirror import REPO_ID, REVISION
from amphub.services.space_changes import GRANTABLE_SPACE_ROLES

API = "/api/v1"
STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
VISIBILITY = {"type": "string", "enum": ["private", "internal", "public"]}
SPACE_ROLE = {"type": "string", "enum": list(GRANTABLE_SPACE_ROLES)}
MODEL_ROLE = {"type": "string", "enum": list(GRANTABLE_MODEL_ROLES)}
PAGING = {"page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1}}
# What the API accepts, so that generated requests (schemathesis) get past the checks.
DISPLAY_NAME = {"type": "string", "minLength": 1, "maxLength": DISPLAY_NAME_MAX}
QUOTA = {"type": "integer", "minimum": 1}  # a multiple of the quota unit: see `document`


def _matching(pattern: re.Pattern[str]) -> dict[str, str]:
    return {"type": "string", "pattern": f"^{pattern.pattern}$"}


USER = _matching(USER_NAME)
PEER = _matching(PEER_NAME)
SECRET = {"type": "string", "minLength": 1, "maxLength": 4096}
URL = {"type": "string", "pattern": "^https?://[a-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._-]*)*$"}


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
    ("POST", "/users"): _object(("name",), name=USER, admin=BOOLEAN, creator=BOOLEAN),
    ("PATCH", "/users/{name}"): _object(admin=BOOLEAN, creator=BOOLEAN, disabled=BOOLEAN),
    ("POST", "/spaces"): _object(
        ("name", "quota", "billing_mode"),
        name=DISPLAY_NAME,
        id=_matching(SPACE_ID),
        quota=QUOTA,
        billing_mode={"type": "string", "enum": ["monthly", "yearly", "pay_as_you_go"]},
        period=INTEGER,
    ),
    ("PATCH", "/spaces/{space}"): _object(("name",), name=DISPLAY_NAME),
    ("POST", "/spaces/{space}/quota"): _object(("quota",), quota=QUOTA),
    ("POST", "/spaces/{space}/renew"): _object(period=INTEGER),
    ("POST", "/spaces/{space}/unsubscribe"): _object(("confirm",), confirm=STRING),
    ("PUT", "/spaces/{space}/members/{user}"): _object(("role",), role=SPACE_ROLE),
    ("POST", "/spaces/{space}/models"): _object(
        ("id",), id=_matching(MODEL_ID), name=DISPLAY_NAME, visibility=VISIBILITY
    ),
    ("PATCH", "/models/{space}/{model}"): _object(name=DISPLAY_NAME, visibility=VISIBILITY),
    ("PUT", "/models/{space}/{model}/members/{user}"): _object(("role",), role=MODEL_ROLE),
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
        ("name", "url", "user", "key"), name=PEER, url=URL, user=USER, key=STRING
    ),
    ("POST", "/deploy-targets"): _object(
        ("name", "url", "secret"), name=PEER, url=URL, secret=SECRET
    ),
    ("POST", "/upstreams"): _object(
        ("name", "url", "space"),
        name=PEER,
        url=URL,
        space=STRING,
        token=STRING,
        visibility={"type": "string", "enum": ["private", "internal", "public"]},
    ),
    ("POST", "/upstreams/{name}/mirrors"): _object(
        ("repo",),
        repo=_matching(REPO_ID),
        revision=_matching(REVISION),
        refresh_hours={
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": 8784,
            "description": "refresh the revision every so many hours; 0 or null: never",
        },
    ),
}
# The query parameters of the lists, by path.
QUERIES: dict[str, dict[str, dict]] = {
    "/users": {**PAGING, "q": STRING},
    "/spaces": {**PAGING, "q": STRING},
    "/models/{space}/{model}/commits/{rev}": {**PAGING, "path": STRING},
    "/models": {
        **PAGING,
        **{
            name: STRING
            for name in ("q", "space", "framework", "task_type", "algorithm", "tag", "license")
        },
        "dataset": STRING,
    },
    "/tasks": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "status": {"type": "string", "enum": list(STATES)},
        "model": STRING,
    },
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


def _operation(
    method: str, path: str, handler: Any, parameters: list[dict], quota_unit: int
) -> dict[str, Any]:
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
    if body is not None and "quota" in body["properties"]:
        quota = {**QUOTA, "multipleOf": quota_unit}
        body = {**body, "properties": {**body["properties"], "quota": quota}}
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
    unit = app[keys.HUB].config.quota_unit
    for method, path, handler, parameters in api_routes(app):
        operation = _operation(method, path, handler, parameters, unit)
        paths.setdefault(path, {})[method.lower()] = operation
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

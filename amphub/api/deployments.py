"""Deployments: hand a model version to an inference service, and hear back from it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from amphub import db
from amphub.api.models import deployment_json
from amphub.api.tasks import queue_on_ref, task_json
from amphub.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from amphub.http import keys
from amphub.http.access import actor, require_model, user_name
from amphub.http.body import MAX_JSON_BODY, BodyTooLong, field, parse_json, read_body
from amphub.http.urls import base_url
from amphub.policy import Action
from amphub.policy.sealed import unseal
from amphub.policy.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WINDOW_SECONDS,
    BadSignature,
    check,
)
from amphub.tasks.deploy import STATUSES

MAX_SERVICE_NAME = 100
MAX_REPLICAS = 1000


async def post_deployment(request: web.Request) -> web.Response:
    """Queue a deploy of a branch, tag or commit to an inference service."""
    database = request.app[keys.HUB].db
    created: list[db.Deployment] = []

    async def prepare(body: dict[str, Any], ref: str, commit: str) -> dict[str, Any]:
        target = field(body, "target", str)
        service = field(body, "service", str).strip()
        replicas = field(body, "replicas", int, 1)
        params = field(body, "params", dict, {})
        if await db.DEPLOY_TARGETS.get(database, target) is None:
            raise BadRequest(f"no deploy target {target}; an administrator registers them")
        if not 0 < len(service) <= MAX_SERVICE_NAME:
            raise BadRequest(f"service must be 1 to {MAX_SERVICE_NAME} characters")
        if not 0 < replicas <= MAX_REPLICAS:
            raise BadRequest(f"replicas must be 1 to {MAX_REPLICAS}")
        who = user_name(actor(request))
        space_id, model_id = request.match_info["space"], request.match_info["model"]
        audit = db.Audit(who, "deploy", space_id, model_id, target, f"{service} at {ref}")
        deployment = await db.insert_deployment(
            database, space_id, model_id, target, service, replicas, ref, commit, who, audit
        )
        created.append(deployment)
        return {"deployment": deployment.id, "params": params, "base_url": base_url(request)}

    _, task = await queue_on_ref(
        request, "deploy", Action.WRITE_FILES, prepare, ("target", "service", "replicas", "params")
    )
    answer = {**task_json(task), "deployment": deployment_json(created[0])}
    return web.json_response(answer, status=201)


async def delete_deployment(request: web.Request) -> web.Response:
    """Delete a deployment: it leaves the model and its key stops working at once."""
    access = await require_model(
        request, request.match_info["space"], request.match_info["model"], Action.WRITE_FILES
    )
    deployment_id = int(request.match_info["id"])
    deployment = await db.get_deployment(request.app[keys.HUB].db, deployment_id)
    if (
        deployment is None
        or deployment.deleted_at is not None
        or (deployment.space_id, deployment.model_id) != (access.space.id, access.model.id)
    ):
        raise NotFound(f"no deployment {deployment_id}")
    audit = db.Audit(
        user_name(actor(request)),
        "delete_deployment",
        access.space.id,
        access.model.id,
        str(deployment_id),
    )
    await db.delete_deployment(request.app[keys.HUB].db, deployment_id, audit)
    return web.Response(status=204)


async def post_status(request: web.Request) -> web.Response:
    """A target reports a deployment's state, signed with the target's secret."""
    deployment_id = int(request.match_info["id"])
    database = request.app[keys.HUB].db
    deployment = await db.get_deployment(database, deployment_id)
    target = await db.DEPLOY_TARGETS.get(database, deployment.target) if deployment else None
    if deployment is None or deployment.deleted_at is not None or target is None:
        raise NotFound(f"no deployment {deployment_id}")
    try:
        raw = await read_body(request, MAX_JSON_BODY)
    except BodyTooLong:
        raise PayloadTooLarge(f"a JSON body may be at most {MAX_JSON_BODY} bytes") from None
    signature = request.headers.get(SIGNATURE_HEADER, "")  # check() refuses an empty one
    now = request.app[keys.HUB].clock().timestamp()
    secret = unseal(request.app[keys.HUB].secret, target.sealed_secret)
    try:
        check(secret, request.headers.get(TIMESTAMP_HEADER), signature, raw, now)
    except BadSignature as exc:
        raise Unauthorized(f"status report refused: {exc}") from None
    if not await db.remember_signature(database, signature, now, 2 * WINDOW_SECONDS):
        raise Unauthorized("status report refused: this report was sent before (a replay)")
    report = _report(raw)
    await db.update_deployment(database, deployment_id, **report)
    updated = await db.get_deployment(database, deployment_id)
    if updated is None:
        raise NotFound(f"no deployment {deployment_id}")
    return web.json_response(deployment_json(updated))


def _report(raw: bytes) -> dict[str, Any]:
    """The fields of a status report, checked."""
    body = parse_json(raw, "the body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    status = field(body, "status", str, None)
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status is one of {', '.join(STATUSES)}")
    ready = field(body, "ready_replicas", int, None)
    if ready is not None and not 0 <= ready <= MAX_REPLICAS:
        raise BadRequest(f"ready_replicas must be 0 to {MAX_REPLICAS}")
    instance = field(body, "instance", str, None)
    message = field(body, "message", str, None)
    return {
        "status": status,
        "ready_replicas": ready,
        "instance": instance[:200] if instance else instance,
        "message": message[:1000] if message else message,
    }


def add_routes(app: web.Application) -> None:
    """The deployment routes."""
    model = "/api/v1/models/{space:[a-z0-9-]+}/{model:[A-Za-z0-9._-]+}"
    app.router.add_post(model + "/deployments", post_deployment)
    app.router.add_delete(model + "/deployments/{id:[0-9]{1,18}}", delete_deployment)
    app.router.add_post("/api/v1/deployments/{id:[0-9]{1,18}}/status", post_status)

"""The deploy task: hand a model version to an inference service.

The target gets a signed JSON description of the deployment, with a read-only key for
that one model that expires by itself and dies with the deployment. It answers with an
instance name and status, and reports later changes to the callback URL it was given.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from amphub import db
from amphub.policy.sealed import unseal
from amphub.policy.signing import signed_headers
from amphub.policy.tokens import TransferToken, key_fingerprint, make_token
from amphub.services.tasks import TaskContext, TaskFailed
from amphub.tasks.peer import RETRIED_STATUSES, peer_message

DEPLOY_KEY_SECONDS = 3600
# Waits between attempts while the target is down or failing; then the task fails.
RETRY_DELAYS = (1, 2, 4)
TIMEOUT = aiohttp.ClientTimeout(total=30)
STATUSES = ("pending", "running", "failed", "stopped")
# How the retries wait; a module attribute, so that tests can wait without the time passing.
sleep = asyncio.sleep


def deployment_key(ctx: TaskContext, user: db.User, deployment: db.Deployment) -> dict[str, Any]:
    """A read-only key for the deployment's model, with its expiry."""
    expires = int(ctx.hub.clock().timestamp()) + DEPLOY_KEY_SECONDS
    token = TransferToken(
        user.name,
        f"{deployment.space_id}/{deployment.model_id}",
        key_fingerprint(user.key_hash),
        expires,
        read_only=True,
        deployment=deployment.id,
    )
    return {"user": user.name, "key": make_token(ctx.hub.secret, token), "expires": expires}


def description(ctx: TaskContext, deployment: db.Deployment, key: dict[str, Any]) -> dict[str, Any]:
    """What the target is told."""
    base = ctx.params["base_url"]
    return {
        "deployment": deployment.id,
        "space": deployment.space_id,
        "model": deployment.model_id,
        "ref": deployment.ref,
        "commit": deployment.commit_id,
        "clone_url": f"{base}/{deployment.space_id}/{deployment.model_id}.git",
        "user": key["user"],
        "key": key["key"],
        "key_expires": key["expires"],
        "service": deployment.service,
        "replicas": deployment.replicas,
        "params": ctx.params["params"],
        "callback_url": f"{base}/api/v1/deployments/{deployment.id}/status",
    }


async def run_deploy(ctx: TaskContext) -> dict[str, Any]:
    """Post the deployment to its target, retrying while the target is down."""
    database = ctx.hub.db
    deployment = await db.get_deployment(database, ctx.params["deployment"])
    if deployment is None or deployment.deleted_at is not None:
        raise TaskFailed("the deployment was deleted")
    try:
        answer = await _post(ctx, deployment)
    except TaskFailed as exc:
        await db.update_deployment(database, deployment.id, status="failed", message=str(exc))
        raise
    status = answer.get("status") if answer.get("status") in STATUSES else "pending"
    instance = answer.get("instance") if isinstance(answer.get("instance"), str) else None
    await db.update_deployment(database, deployment.id, status=status, instance=instance)
    return {"deployment": deployment.id, "instance": instance, "status": status}


async def _post(ctx: TaskContext, deployment: db.Deployment) -> dict[str, Any]:
    database = ctx.hub.db
    target = await db.DEPLOY_TARGETS.get(database, deployment.target)
    user = await db.get_user(database, deployment.created_by)
    if target is None:
        raise TaskFailed(f"deploy target {deployment.target} is no longer registered")
    if user is None or user.disabled:
        raise TaskFailed(f"the user {deployment.created_by} may no longer deploy")
    secret = unseal(ctx.hub.secret, target.sealed_secret)
    body = json.dumps(description(ctx, deployment, deployment_key(ctx, user, deployment))).encode()
    problem = ""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
            await ctx.progress(attempt - 1, len(RETRY_DELAYS) + 1, f"posting to {target.name}")
            # Signed anew each time, so that a retry is not refused as a replay.
            now = int(ctx.hub.clock().timestamp())
            headers = {"Content-Type": "application/json", **signed_headers(secret, now, body)}
            try:
                async with session.post(target.url, data=body, headers=headers) as resp:
                    text = await resp.text()
                    if resp.ok:
                        return _answer(text)
                    problem = f"{target.name} answered {resp.status}: " + peer_message(
                        resp.status, text
                    )
                    if resp.status not in RETRIED_STATUSES:
                        raise TaskFailed(problem)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                problem = f"{target.name} unreachable: {type(exc).__name__}: {exc}"
            if delay is not None:
                await sleep(delay)
    raise TaskFailed(problem)


def _answer(text: str) -> dict[str, Any]:
    try:
        answer = json.loads(text)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}

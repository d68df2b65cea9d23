"""Tasks: start a scan, list and follow tasks, cancel them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from amphub import db
from amphub.errors import BadRequest, Forbidden, NotFound, Unauthorized
from amphub.http import keys
from amphub.http.access import SIGN_IN_NEEDED, ModelAccess, actor, require_model, user_name
from amphub.http.body import field, json_object
from amphub.policy import Action
from amphub.services.tasks import FINISHED_STATES, enqueue
from amphub.storage.repo_files import RevisionNotFound, resolve

D = TypeVar("D")
KINDS = ("scan", "sync", "deploy", "mirror")
STATES = ("queued", "running", *FINISHED_STATES)
DEFAULT_LIMIT, MAX_LIMIT = 200, 500
SCAN_LIMIT = 10_000


def scan_verdict(task: db.Task, result: Any) -> str | None:
    """What a finished scan found (unsafe, suspicious, error or safe); None for other tasks."""
    if task.kind != "scan" or task.status != "succeeded" or not isinstance(result, dict):
        return None
    status = result.get("summary", {}).get("status")
    return str(status) if status else None


def task_json(task: db.Task, *, files: bool = True) -> dict[str, Any]:
    """A task as the API shows it; without `files`, nothing that names a file of the model.

    A visitor, who may not read the files, sees a scan's summary and no progress message.
    """
    result = json.loads(task.result) if task.result else None
    if not files and isinstance(result, dict):
        result = {key: value for key, value in result.items() if key != "files"}
    return {
        "id": task.id,
        "kind": task.kind,
        "model": f"{task.space_id}/{task.model_id}",
        "ref": task.ref,
        "commit": task.commit_id,
        "status": task.status,
        "progress": task.progress,
        "message": task.message if files else "",
        "result": result,
        "verdict": scan_verdict(task, result),
        "created_by": task.created_by,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "node": task.node,
    }


Prepare = Callable[[dict[str, Any], str, str], Awaitable[dict[str, Any]]]


async def queue_on_ref(
    request: web.Request, kind: str, action: Action, prepare: Prepare, fields: tuple[str, ...] = ()
) -> tuple[ModelAccess, db.Task]:
    """Queue a task of `kind` on the branch, tag or commit the body names.

    `prepare(body, ref, commit)` checks the rest of the body, `fields` besides `ref`, and
    gives the task's params.
    """
    access = await require_model(
        request, request.match_info["space"], request.match_info["model"], action
    )
    body = await json_object(request, ("ref", *fields))
    ref = field(body, "ref", str, "master")
    path = request.app[keys.HUB].repos.path(access.space.id, access.model.id)
    try:
        commit = await request.app[keys.HUB].run_blocking(lambda: resolve(path, ref))
    except RevisionNotFound as exc:
        raise BadRequest(str(exc)) from None
    params = await prepare(body, ref, commit)
    who = user_name(actor(request))  # a task names who started it: never an anonymous caller
    task = await enqueue(request.app[keys.HUB], kind, access.model, ref, commit, params, who)
    return access, task


async def post_scan(request: web.Request) -> web.Response:
    """Queue a security scan of a branch, tag or commit."""

    async def prepare(body: dict[str, Any], ref: str, commit: str) -> dict[str, Any]:
        return {}

    _, task = await queue_on_ref(request, "scan", Action.READ_FILES, prepare)
    return web.json_response(task_json(task), status=201)


async def post_sync(request: web.Request) -> web.Response:
    """Queue a sync of a branch, tag or commit to a zone."""

    async def prepare(body: dict[str, Any], ref: str, commit: str) -> dict[str, Any]:
        zone = field(body, "zone", str)
        if await db.ZONES.get(request.app[keys.HUB].db, zone) is None:
            raise BadRequest(f"no zone {zone}; an administrator registers zones")
        return {"zone": zone}

    _, task = await queue_on_ref(request, "sync", Action.WRITE_FILES, prepare, ("zone",))
    return web.json_response(task_json(task), status=201)


async def _visible_task(request: web.Request) -> tuple[db.Task, ModelAccess]:
    """A task whose model the caller may view; 404 otherwise, as for the model itself."""
    task_id = int(request.match_info["id"])
    task = await db.get_task(request.app[keys.HUB].db, task_id)
    if task is None:
        if not actor(request).signed_in:
            raise Unauthorized(SIGN_IN_NEEDED)
        raise NotFound(f"no task {task_id}")
    try:
        access = await require_model(request, task.space_id, task.model_id, Action.VIEW)
    except NotFound:
        raise NotFound(f"no task {task_id}") from None
    return task, access


async def get_task(request: web.Request) -> web.Response:
    """One task, with its progress or result."""
    task, access = await _visible_task(request)
    return web.json_response(task_json(task, files=access.may(Action.READ_FILES)))


def _whole(query: Mapping[str, str], name: str, default: D, low: int, high: int) -> int | D:
    if not query.get(name):
        return default
    try:
        value = int(query[name])
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} is {low} to {high}")
    return value


async def get_tasks(request: web.Request) -> web.Response:
    """Tasks the caller may see, newest first: `?kind=&status=&model=space/model`.

    `limit` (default 200) tasks at most; when there may be more, `next_before` is the id
    to pass as `before` for the next ones. Tasks of models the caller may not see are
    skipped; one call looks at SCAN_LIMIT tasks at most.
    """
    return web.json_response(await tasks_answer(request))


async def tasks_answer(request: web.Request) -> dict[str, Any]:
    """What `get_tasks` answers: the tasks and where the next ones start."""
    who = actor(request)
    if not who.signed_in:
        raise Unauthorized(SIGN_IN_NEEDED)
    query = request.query
    kind, status = query.get("kind") or None, query.get("status") or None
    if kind and kind not in KINDS or status and status not in STATES:
        raise BadRequest(f"kind is one of {', '.join(KINDS)}; status one of {', '.join(STATES)}")
    limit = _whole(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    before = _whole(query, "before", None, 1, 2**62)
    space_id = model_id = None
    if query.get("model"):
        space_id, _, model_id = query["model"].partition("/")
        await require_model(request, space_id, model_id, Action.VIEW)
    seen: dict[tuple[str, str], ModelAccess | None] = {}
    visible: list[dict[str, Any]] = []
    scanned = 0
    while len(visible) < limit and scanned < SCAN_LIMIT:
        tasks = await db.list_tasks(
            request.app[keys.HUB].db,
            kind=kind,
            status=status,
            space_id=space_id,
            model_id=model_id,
            before=before,
            limit=limit,
        )
        for task in tasks:
            before, scanned = task.id, scanned + 1
            access = await _access(request, task, seen)
            if access is not None:
                visible.append(task_json(task, files=access.may(Action.READ_FILES)))
                if len(visible) == limit:
                    break
        if len(tasks) < limit:
            return {"tasks": visible, "next_before": None}
    return {"tasks": visible, "next_before": before}


async def _access(
    request: web.Request, task: db.Task, seen: dict[tuple[str, str], ModelAccess | None]
) -> ModelAccess | None:
    """The caller's access to the task's model if they may view it; once per model."""
    model = (task.space_id, task.model_id)
    if model not in seen:
        try:
            seen[model] = await require_model(request, *model, Action.VIEW)
        except (NotFound, Forbidden):
            seen[model] = None
    return seen[model]


async def post_cancel(request: web.Request) -> web.Response:
    """Cancel a queued task, or ask a running one to stop; its creator or an admin."""
    task, access = await _visible_task(request)
    who = actor(request)
    if not who.admin and who.name != task.created_by:
        raise Forbidden("only the task's creator or an administrator may cancel it")
    if task.status in FINISHED_STATES:
        raise BadRequest(f"task {task.id} has {task.status} already")
    canceled = await db.cancel_task(request.app[keys.HUB].db, task.id)
    if canceled is None:
        raise NotFound(f"no task {task.id}")
    return web.json_response(task_json(canceled, files=access.may(Action.READ_FILES)))


def add_routes(app: web.Application) -> None:
    """The task routes."""
    # Ids hold no '/', so these segment regexes keep path separators out.
    model = "/api/v1/models/{space:[a-z0-9-]+}/{model:[A-Za-z0-9._-]+}"
    task = "/api/v1/tasks/{id:[0-9]{1,18}}"
    app.router.add_post(model + "/scans", post_scan)
    app.router.add_post(model + "/syncs", post_sync)
    app.router.add_get("/api/v1/tasks", get_tasks)
    app.router.add_get(task, get_task)
    app.router.add_post(task + "/cancel", post_cancel)

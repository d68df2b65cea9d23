"""Models: create, list, show, change, delete, and their members."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web

from amphub import db
from amphub.errors import BadRequest, NotFound
from amphub.http import keys
from amphub.http.access import ModelAccess, actor, require_model, require_space, user_name
from amphub.http.body import field, json_object
from amphub.http.urls import model_url
from amphub.policy import Action
from amphub.policy.matrix import MODEL_ACTIONS, MODEL_ROLES, VISIBILITIES
from amphub.policy.names import check_display_name, check_model_id
from amphub.services.models import change_model, create_model, model_details, remove_model
from amphub.services.scans import RefScan
from amphub.services.search import ModelSearch, search_models

D = TypeVar("D")

GRANTABLE_MODEL_ROLES = tuple(role for role in MODEL_ROLES if role != "owner")
FILTERS = ("space", "framework", "task_type", "algorithm", "tag", "license", "dataset")
MAX_PER_PAGE = 100


def model_json(
    request: web.Request, model: db.Model, may: set[Action], size: int | None
) -> dict[str, Any]:
    """A model as the API shows it."""
    answer: dict[str, Any] = {
        "space": model.space_id,
        "id": model.id,
        "name": model.name,
        "url": model_url(request, model.space_id, model.id),
        "visibility": model.visibility,
        "owner": model.owner,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "permissions": sorted(action.value for action in may),
    }
    if size is not None:
        answer["size"] = size
    return answer


async def detail_json(request: web.Request, access: ModelAccess) -> dict[str, Any]:
    """A model with its size, refs, card, replicas, deployments and last scan."""
    details = await model_details(request.app[keys.HUB], access.model)
    may = {action for action in MODEL_ACTIONS if access.may(action)}
    stored, refs, scan = details.card, details.refs, details.last_scan
    return {
        **model_json(request, access.model, may, details.size),
        "lfs_size": details.lfs_size,
        "card": _card(stored[1]) if stored else None,
        "card_commit": stored[0] if stored else None,
        "refs": refs,
        "replicas": [_replica_json(replica, refs) for replica in details.replicas],
        "deployments": [deployment_json(d) for d in details.deployments],
        "scan": _scan_summary(scan) if scan else None,
        "master_scan": ref_scan_json(details.master_scan),
    }


def _replica_json(replica: db.Replica, refs: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """A replica tag; `behind` when the ref has moved on since it was synced."""
    current = {ref["name"]: ref["commit"] for kind in ("branches", "tags") for ref in refs[kind]}
    return {
        "zone": replica.zone,
        "ref": replica.ref,
        "commit": replica.commit_id,
        "synced_at": replica.synced_at,
        "behind": current.get(replica.ref, replica.commit_id) != replica.commit_id,
    }


def deployment_json(deployment: db.Deployment) -> dict[str, Any]:
    """A deployment as the API shows it."""
    return {
        "id": deployment.id,
        "target": deployment.target,
        "service": deployment.service,
        "instance": deployment.instance,
        "status": deployment.status,
        "replicas": deployment.replicas,
        "ready_replicas": deployment.ready_replicas,
        "ref": deployment.ref,
        "commit": deployment.commit_id,
        "message": deployment.message,
        "created_by": deployment.created_by,
        "created_at": deployment.created_at,
        "updated_at": deployment.updated_at,
    }


def ref_scan_json(found: RefScan) -> dict[str, Any]:
    """The verdict of a ref as the API shows it: `state` is scanned, outdated or not_scanned.

    An outdated verdict is that of the ref's last scan, made before the ref moved to `commit`.
    """
    answer: dict[str, Any] = {"ref": found.ref, "commit": found.commit, "state": found.state}
    if found.task is not None:
        answer |= {
            "task": found.task.id,
            "scanned_commit": found.task.commit_id,
            "finished_at": found.task.finished_at,
            **found.summary,
        }
    return answer


def _scan_summary(task: db.Task) -> dict[str, Any]:
    result = json.loads(task.result or "{}")
    return {
        "task": task.id,
        "ref": task.ref,
        "commit": task.commit_id,
        "finished_at": task.finished_at,
        **result.get("summary", {}),
    }


def _visibility(body: dict[str, Any], default: D) -> str | D:
    visibility = field(body, "visibility", str, default)
    if visibility is not None and visibility not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}")
    return visibility


async def post_models(request: web.Request) -> web.Response:
    """Create a model: its row, then its repository with a first commit on master."""
    space = await require_space(request, request.match_info["space"], Action.CREATE_MODEL)
    body = await json_object(request, ("id", "name", "visibility"))
    model_id = check_model_id(field(body, "id", str))
    name = check_display_name(field(body, "name", str, model_id))
    visibility = _visibility(body, "private")
    hub = request.app[keys.HUB]
    await create_model(hub, space.id, model_id, name, visibility, actor(request).name or "")
    access = await require_model(request, space.id, model_id, Action.VIEW)
    return web.json_response(await detail_json(request, access), status=201)


def _page(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "20"))
    except ValueError:
        raise BadRequest("page and per_page must be whole numbers") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequest(f"page starts at 1; per_page is 1 to {MAX_PER_PAGE}")
    return page, per_page


def _parameter_bound(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None


def model_search(request: web.Request, limit: int, offset: int) -> ModelSearch:
    """The search a request asks for: `q`, the filters, the parameter range, `sort`."""
    sort = request.query.get("sort", "updated")
    if sort not in db.SORTS:
        raise BadRequest(f"sort must be one of {', '.join(db.SORTS)}")
    return ModelSearch(
        text=request.query.get("q", ""),
        filters={name: request.query[name] for name in FILTERS if request.query.get(name)},
        min_parameters=_parameter_bound(request, "parameters_min"),
        max_parameters=_parameter_bound(request, "parameters_max"),
        sort=sort,
        limit=limit,
        offset=offset,
    )


async def get_models(request: web.Request) -> web.Response:
    """Search the models the caller may retrieve, with filters, sorting and facet counts."""
    return web.json_response(await search_answer(request))


async def search_answer(request: web.Request) -> dict[str, Any]:
    """What `get_models` answers: one page of models, the total and the facet counts."""
    page, per_page = _page(request)
    search = model_search(request, per_page, (page - 1) * per_page)
    found = await search_models(request.app[keys.HUB], actor(request), search)
    models = [
        {**model_json(request, model, actions, None), "card": _card(card)}
        for (model, card), actions in zip(found.result.models, found.permissions, strict=True)
    ]
    result = found.result
    return {"models": models, "total": result.total, "facets": result.facets}


def _card(card_json: str | None) -> dict[str, Any] | None:
    return json.loads(card_json) if card_json else None


def _model_ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["space"], request.match_info["model"]


async def get_model(request: web.Request) -> web.Response:
    """One model."""
    access = await require_model(request, *_model_ids(request), Action.VIEW)
    return web.json_response(await detail_json(request, access))


async def patch_model(request: web.Request) -> web.Response:
    """Rename a model or change its visibility."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    body = await json_object(request, ("name", "visibility"))
    name = field(body, "name", str, None)
    name = check_display_name(name) if name is not None else None
    visibility = _visibility(body, None)
    await change_model(
        request.app[keys.HUB],
        access.space.id,
        access.model.id,
        actor(request).name or "",
        name=name,
        visibility=visibility,
    )
    access = await require_model(request, *_model_ids(request), Action.VIEW)
    return web.json_response(await detail_json(request, access))


async def delete_model(request: web.Request) -> web.Response:
    """Delete a model, its repository, and then the objects no other model references."""
    access = await require_model(request, *_model_ids(request), Action.DELETE)
    await remove_model(request.app[keys.HUB], access.model, actor(request).name or "")
    return web.Response(status=204)


async def get_members(request: web.Request) -> web.Response:
    """The model's owner and granted members."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    return web.json_response({"members": await members_json(request, access)})


async def members_json(request: web.Request, access: ModelAccess) -> list[dict[str, str]]:
    """The model's owner, then its granted members, as `get_members` lists them."""
    hub = request.app[keys.HUB]
    granted = await db.list_model_members(hub.db, access.space.id, access.model.id)
    members = [{"user": access.model.owner, "role": "owner"}]
    members += [{"user": u, "role": r} for u, r in granted if u != access.model.owner]
    return members


async def put_member(request: web.Request) -> web.Response:
    """Grant or change a member's role on the model."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    user = request.match_info["user"]
    role = field(await json_object(request, ("role",)), "role", str)
    if role not in GRANTABLE_MODEL_ROLES:
        raise BadRequest(f"role must be one of {', '.join(GRANTABLE_MODEL_ROLES)}")
    database = request.app[keys.HUB].db
    if await db.get_user(database, user) is None:
        raise NotFound(f"no user {user}")
    if user == access.model.owner:
        raise BadRequest("the owner's role is fixed")
    space_id, model_id = access.space.id, access.model.id
    audit = db.Audit(user_name(actor(request)), "grant_model_role", space_id, model_id, user, role)
    await db.set_model_member(database, space_id, model_id, user, role, audit)
    return web.json_response({"user": user, "role": role})


async def delete_member(request: web.Request) -> web.Response:
    """Revoke a member's role on the model."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    user = request.match_info["user"]
    space_id, model_id = access.space.id, access.model.id
    audit = db.Audit(user_name(actor(request)), "revoke_model_role", space_id, model_id, user)
    if not await db.delete_model_member(request.app[keys.HUB].db, space_id, model_id, user, audit):
        raise NotFound(f"{user} is not a member of model {space_id}/{model_id}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """The model routes."""
    # Ids and user names hold no '/', so these segment regexes keep path separators out.
    model = "/api/v1/models/{space:[a-z0-9-]+}/{model:[A-Za-z0-9._-]+}"
    member = model + "/members/{user:[a-z0-9._-]+}"
    app.router.add_post("/api/v1/spaces/{space:[a-z0-9-]+}/models", post_models)
    app.router.add_get("/api/v1/models", get_models)
    app.router.add_get(model, get_model)
    app.router.add_patch(model, patch_model)
    app.router.add_delete(model, delete_model)
    app.router.add_get(model + "/members", get_members)
    app.router.add_put(member, put_member)
    app.router.add_delete(member, delete_member)

"""Models: create, list, show, change, delete, and their members."""

from __future__ import annotations

from aiohttp import web

from amphub import db, keys
from amphub.access import ModelAccess, actor, require_model, require_space, space_status
from amphub.api.body import field, json_object
from amphub.errors import BadRequest, Conflict, NotFound
from amphub.git.bridge import run_blocking
from amphub.git.repos import create_model_repo, repo_path, repo_size
from amphub.lfs.garbage import collect
from amphub.names import check_display_name, check_model_id
from amphub.policy import Action, Actor, ModelTarget, SpaceTarget, allowed, lifetime
from amphub.policy.matrix import MODEL_ACTIONS, MODEL_ROLES, VISIBILITIES
from amphub.spaces import delete_model as remove_model
from amphub.urls import model_url

GRANTABLE_MODEL_ROLES = tuple(role for role in MODEL_ROLES if role != "owner")
# A space in retention can be neither read nor searched until it is renewed.
SEARCHABLE = (lifetime.Status.IN_USE, lifetime.Status.GRACE_PERIOD)
MAX_PER_PAGE = 100


def model_json(request: web.Request, model: db.Model, may: set[Action], size: int | None) -> dict:
    """A model as the API shows it."""
    answer = {
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


async def _detail_json(request: web.Request, access: ModelAccess) -> dict:
    path = repo_path(request.app[keys.CONFIG], access.space.id, access.model.id)
    size = await run_blocking(request.app, lambda: repo_size(path))
    may = {action for action in MODEL_ACTIONS if access.may(action)}
    return model_json(request, access.model, may, size)


def _visibility(body: dict, default: str | None) -> str | None:
    visibility = field(body, "visibility", str, default)
    if visibility is not None and visibility not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}")
    return visibility


async def post_models(request: web.Request) -> web.Response:
    """Create a model: its row, then its repository with a first commit on master."""
    space = await require_space(request, request.match_info["space"], Action.CREATE_MODEL)
    body = await json_object(request)
    model_id = check_model_id(field(body, "id", str))
    name = check_display_name(field(body, "name", str, model_id))
    visibility = _visibility(body, "private")
    database = request.app[keys.DB]
    owner = actor(request).name
    try:
        await db.insert_model(database, space.id, model_id, name, visibility, owner)
    except db.Conflict as exc:
        raise Conflict(str(exc)) from None
    path = repo_path(request.app[keys.CONFIG], space.id, model_id)
    try:
        await run_blocking(request.app, lambda: create_model_repo(path, name, owner))
    except BaseException:
        await db.delete_model_row(database, space.id, model_id)
        raise
    access = await require_model(request, space.id, model_id, Action.VIEW)
    return web.json_response(await _detail_json(request, access), status=201)


async def _retrievable(request: web.Request, who: Actor) -> list[tuple[db.Model, set[Action]]]:
    """Every model the caller may retrieve, with what the caller may do with each.

    Three reads whatever the number of models: the models with their spaces, and the
    caller's space and model roles.
    """
    database = request.app[keys.DB]
    spaces = {s.id: s for s in await db.list_spaces(database)}
    space_roles = await db.user_space_roles(database, who.name) if who.name else {}
    model_roles = await db.user_model_roles(database, who.name) if who.name else {}
    found = []
    for model in await db.list_models(database):
        space = spaces[model.space_id]
        if space_status(request.app, space) not in SEARCHABLE:
            continue
        granted = space_roles.get(space.id)
        role = model_roles.get((space.id, model.id))
        target = ModelTarget(
            SpaceTarget(space.creator, {who.name: granted} if granted else {}),
            owner=model.owner,
            visibility=model.visibility,
            roles={who.name: role} if role else {},
        )
        if allowed(who, Action.RETRIEVE, target):
            found.append((model, {a for a in MODEL_ACTIONS if allowed(who, a, target)}))
    return found


def _page(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "20"))
    except ValueError:
        raise BadRequest("page and per_page must be whole numbers") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequest(f"page starts at 1; per_page is 1 to {MAX_PER_PAGE}")
    return page, per_page


async def get_models(request: web.Request) -> web.Response:
    """The models the caller may retrieve, filtered by space and a text in name or id."""
    page, per_page = _page(request)
    space = request.query.get("space")
    text = request.query.get("q", "").strip().lower()
    found = [
        (model, may)
        for model, may in await _retrievable(request, actor(request))
        if (not space or model.space_id == space)
        and (not text or text in model.id.lower() or text in model.name.lower())
    ]
    spaces: dict[str, int] = {}
    for model, _ in found:
        spaces[model.space_id] = spaces.get(model.space_id, 0) + 1
    shown = found[(page - 1) * per_page : page * per_page]
    return web.json_response(
        {
            "models": [model_json(request, model, may, None) for model, may in shown],
            "total": len(found),
            "facets": {"space": spaces},
        }
    )


def _model_ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["space"], request.match_info["model"]


async def get_model(request: web.Request) -> web.Response:
    """One model."""
    access = await require_model(request, *_model_ids(request), Action.VIEW)
    return web.json_response(await _detail_json(request, access))


async def patch_model(request: web.Request) -> web.Response:
    """Rename a model or change its visibility."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    body = await json_object(request)
    name = field(body, "name", str, None)
    name = check_display_name(name) if name is not None else None
    visibility = _visibility(body, None)
    detail = ", ".join(f"{k}={v}" for k, v in (("name", name), ("visibility", visibility)) if v)
    audit = db.Audit(
        actor(request).name, "change_model", access.space.id, access.model.id, detail=detail
    )
    await db.update_model(
        request.app[keys.DB],
        access.space.id,
        access.model.id,
        audit,
        name=name,
        visibility=visibility,
    )
    access = await require_model(request, *_model_ids(request), Action.VIEW)
    return web.json_response(await _detail_json(request, access))


async def delete_model(request: web.Request) -> web.Response:
    """Delete a model, its repository, and then the objects no other model references."""
    access = await require_model(request, *_model_ids(request), Action.DELETE)
    audit = db.Audit(actor(request).name, "delete_model", access.space.id, access.model.id)
    app = request.app
    oids = await remove_model(app, access.model, audit)
    app[keys.BACKGROUND].spawn(collect(app, oids), f"collect objects of {access.model.id}")
    return web.Response(status=204)


async def get_members(request: web.Request) -> web.Response:
    """The model's owner and granted members."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    granted = await db.list_model_members(request.app[keys.DB], access.space.id, access.model.id)
    members = [{"user": access.model.owner, "role": "owner"}]
    members += [{"user": u, "role": r} for u, r in granted if u != access.model.owner]
    return web.json_response({"members": members})


async def put_member(request: web.Request) -> web.Response:
    """Grant or change a member's role on the model."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    user = request.match_info["user"]
    role = field(await json_object(request), "role", str)
    if role not in GRANTABLE_MODEL_ROLES:
        raise BadRequest(f"role must be one of {', '.join(GRANTABLE_MODEL_ROLES)}")
    database = request.app[keys.DB]
    if await db.get_user(database, user) is None:
        raise NotFound(f"no user {user}")
    if user == access.model.owner:
        raise BadRequest("the owner's role is fixed")
    space_id, model_id = access.space.id, access.model.id
    audit = db.Audit(actor(request).name, "grant_model_role", space_id, model_id, user, role)
    await db.set_model_member(database, space_id, model_id, user, role, audit)
    return web.json_response({"user": user, "role": role})


async def delete_member(request: web.Request) -> web.Response:
    """Revoke a member's role on the model."""
    access = await require_model(request, *_model_ids(request), Action.EDIT)
    user = request.match_info["user"]
    space_id, model_id = access.space.id, access.model.id
    audit = db.Audit(actor(request).name, "revoke_model_role", space_id, model_id, user)
    if not await db.delete_model_member(request.app[keys.DB], space_id, model_id, user, audit):
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

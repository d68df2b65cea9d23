"""Models: create one in a space, show one."""

from __future__ import annotations

from aiohttp import web

from amphub import db, keys
from amphub.access import may, require_model, require_space
from amphub.api.body import field, json_object
from amphub.errors import BadRequest, Conflict
from amphub.git.bridge import run_blocking
from amphub.git.repos import create_model_repo, delete_model_repo, repo_path, repo_size
from amphub.lfs.garbage import collect
from amphub.names import check_display_name, check_model_id
from amphub.policy import Action
from amphub.policy.matrix import MODEL_ACTIONS, VISIBILITIES
from amphub.urls import model_url


async def model_json(request: web.Request, space: db.Space, model: db.Model) -> dict:
    """A model as the API shows it."""
    path = repo_path(request.app[keys.CONFIG], space.id, model.id)
    return {
        "space": model.space_id,
        "id": model.id,
        "name": model.name,
        "url": model_url(request, model.space_id, model.id),
        "visibility": model.visibility,
        "owner": model.owner,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "size": await run_blocking(request.app, lambda: repo_size(path)),
        "permissions": sorted(a.value for a in MODEL_ACTIONS if may(request, a, space, model)),
    }


def _visibility(body: dict) -> str:
    visibility = field(body, "visibility", str, "private")
    if visibility not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}")
    return visibility


async def post_models(request: web.Request) -> web.Response:
    """Create a model: its row, then its repository with a first commit on master."""
    space = await require_space(request, request.match_info["space"], Action.USE_SPACE)
    body = await json_object(request)
    model_id = check_model_id(field(body, "id", str))
    name = check_display_name(field(body, "name", str, model_id))
    visibility = _visibility(body)
    database = request.app[keys.DB]
    owner = request[keys.ACTOR].name
    try:
        model = await db.insert_model(database, space.id, model_id, name, visibility, owner)
    except db.Conflict as exc:
        raise Conflict(str(exc)) from None
    path = repo_path(request.app[keys.CONFIG], space.id, model_id)
    try:
        await run_blocking(request.app, lambda: create_model_repo(path, name, owner))
    except BaseException:
        await db.delete_model_row(database, space.id, model_id)
        raise
    return web.json_response(await model_json(request, space, model), status=201)


async def get_model(request: web.Request) -> web.Response:
    """One model."""
    space, model = await require_model(
        request, request.match_info["space"], request.match_info["model"], Action.VIEW
    )
    return web.json_response(await model_json(request, space, model))


async def delete_model(request: web.Request) -> web.Response:
    """Delete a model: its row and links, its repository, then its unreferenced objects."""
    space, model = await require_model(
        request, request.match_info["space"], request.match_info["model"], Action.DELETE
    )
    app = request.app
    database = app[keys.DB]
    oids = await db.model_oids(database, space.id, model.id)
    await db.delete_model_row(database, space.id, model.id)
    path = repo_path(app[keys.CONFIG], space.id, model.id)
    lock = app[keys.REPO_LOCKS].for_repo(path)

    def remove() -> None:
        with lock:
            delete_model_repo(path)

    await run_blocking(app, remove)
    app[keys.BACKGROUND].spawn(collect(app, oids), f"collect objects of {space.id}/{model.id}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """The model routes."""
    # Ids hold no '/', so these segment regexes keep path separators out.
    app.router.add_post("/api/v1/spaces/{space:[a-z0-9-]+}/models", post_models)
    model = "/api/v1/models/{space:[a-z0-9-]+}/{model:[A-Za-z0-9._-]+}"
    app.router.add_get(model, get_model)
    app.router.add_delete(model, delete_model)

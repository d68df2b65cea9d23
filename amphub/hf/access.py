"""amphub's one permission check (require_model), answered as the Hub answers.

What the caller may not view is a missing repository (RepositoryNotFoundError): 401 to
an anonymous caller, 404 to anyone else, as the Hub does for private repositories. A
model the caller may view but not read is a gated one (GatedRepoError). Every other
refusal keeps amphub's status and sentence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from amphub import db
from amphub.errors import ApiError, Forbidden, NotFound, Unauthorized
from amphub.hf.errors import (
    EntryNotFound,
    GatedRepo,
    HiddenRepo,
    RepoNotFound,
    RevisionNotFound,
)
from amphub.hf.repo import HUB_DEFAULT_BRANCH, resolve_revision
from amphub.http import keys
from amphub.http.access import ModelAccess, actor, require_model, require_space
from amphub.policy import Action
from amphub.services.mirror import (
    NotYetServed,
    check_mirror_servable,
    check_repo,
    check_revision,
    fetch_missing_revision,
    not_yet,
    start_on_first_use,
    upstream_of_space,
    upstream_repo,
)
from amphub.storage import repo_files

T = TypeVar("T")
# How often a held Hub API call looks again at a mirrored model being fetched or scanned
# by another node; a task ending on this node wakes it at once.
HOLD_POLL_SECONDS = 1.0


async def require_repo(
    request: web.Request, action: Action, space_id: str | None = None, model_id: str | None = None
) -> ModelAccess:
    """The model (of the path, unless given) if the caller may do `action` on it.

    A Hub API call (`/api/…`) for a mirrored model being fetched or scanned is held until
    that is done, up to `mirror_wait_seconds`: huggingface_hub waits on these calls with
    no timeout but does not retry a 503 from the first one, `snapshot_download`'s
    `repo_info`. File downloads are answered 503 at once, as their client retries them.
    """
    hub = request.app[keys.HUB]
    held = request.path.startswith("/api/")
    deadline = time.monotonic() + (hub.config.mirror_wait_seconds if held else 0)
    while True:
        try:
            return await _require_repo(request, action, space_id, model_id)
        except NotYetServed:
            if time.monotonic() + HOLD_POLL_SECONDS > deadline:
                raise
        await hub.tasks.a_task_finished(HOLD_POLL_SECONDS)


async def _require_repo(
    request: web.Request, action: Action, space_id: str | None, model_id: str | None
) -> ModelAccess:
    space_id = space_id or request.match_info["space"]
    model_id = model_id or request.match_info["model"]
    repo_id = f"{space_id}/{model_id}"
    try:
        access = await require_model(request, space_id, model_id, Action.VIEW)
    except NotFound:
        if action in (Action.VIEW, Action.READ_FILES):
            await _mirror_on_first_use(request, space_id, model_id)
        raise RepoNotFound(f"Repository {repo_id} not found") from None
    except Unauthorized:
        if actor(request).signed_in:
            raise
        raise HiddenRepo(
            f"Repository {repo_id} not found; if it is not public, send an amphub key"
            " as the token (HF_TOKEN)"
        ) from None
    await _check_mirror(request, access)
    if action is Action.VIEW:
        return access
    if action is Action.READ_FILES and not access.may(action):
        raise GatedRepo(
            f"you may see {repo_id} but not download its files; ask its owner for the user role"
        )
    return await require_model(request, space_id, model_id, action)


async def _check_mirror(request: web.Request, access: ModelAccess) -> None:
    """Refuse a mirrored model's revision, or ask to come back, unless its commit's scan passed."""
    hub = request.app[keys.HUB]
    mirror = await db.get_mirror(hub.db, access.space.id, access.model.id)
    if mirror is None:
        return
    revision = request.match_info.get("rev", HUB_DEFAULT_BRANCH)
    path = repository(request, access)
    by = actor(request).name or ""
    try:
        commit = await hub.run_blocking(lambda: resolve_revision(path, revision))
    except repo_files.RevisionNotFound:
        await _fetch_revision_on_first_use(request, access, mirror, revision)
        return  # nothing of it can be served: the handler says so
    try:
        await check_mirror_servable(hub, access.model, mirror, (revision, commit), by)
    except Forbidden as exc:  # huggingface_hub shows a gated repo's sentence as it is
        raise GatedRepo(str(exc)) from None
    request[keys.GATED_COMMIT] = (path, revision, commit)


def revision_resolver(request: web.Request) -> Callable[[Path, str], str]:
    """`resolve_revision` for this request's git work: the gate's commit for its revision."""
    gated = request.get(keys.GATED_COMMIT)

    def resolve(path: Path, rev: str) -> str:
        if gated is not None and gated[:2] == (path, rev):
            return gated[2]
        return resolve_revision(path, rev)

    return resolve


async def _fetch_revision_on_first_use(
    request: web.Request, access: ModelAccess, mirror: db.Mirror, revision: str
) -> None:
    """Start fetching a revision a mirrored model lacks, and say to come back.

    Only for one who may create models in the mirror space (who could start the model's
    own fetch); where the last fetch of that revision failed, its failure is the answer.
    """
    try:
        await require_space(request, access.space.id, Action.CREATE_MODEL)
        check_revision(revision)
    except ApiError:
        return
    hub, by = request.app[keys.HUB], actor(request).name or ""
    try:
        await fetch_missing_revision(hub, access.model, mirror, revision, by)
    except Forbidden as exc:
        raise GatedRepo(str(exc)) from None


async def _mirror_on_first_use(request: web.Request, space_id: str, model_id: str) -> None:
    """Start fetching a model of a mirror space from its upstream, and say to come back.

    Only for a model that does not exist, asked for by one who may create models there.
    """
    hub = request.app[keys.HUB]
    upstream = await upstream_of_space(hub, space_id)
    if upstream is None or await db.get_model(hub.db, space_id, model_id) is not None:
        return
    try:
        await require_space(request, space_id, Action.CREATE_MODEL)
        repo = check_repo(upstream_repo(model_id))
        revision = check_revision(request.match_info.get("rev", HUB_DEFAULT_BRANCH))
    except ApiError:
        return
    by = actor(request).name or ""
    task = await start_on_first_use(hub, upstream, repo, revision, by)
    started = f", task {task.id}" if task else ""
    raise not_yet(
        f"{space_id}/{model_id} is being fetched from upstream {upstream.name} ({repo} at"
        f" {revision}{started}) and scanned"
    )


def repository(request: web.Request, access: ModelAccess) -> Path:
    """The bare repository of a model the caller passed the check for."""
    return request.app[keys.HUB].repos.path(access.space.id, access.model.id)


async def run_git(request: web.Request, work: Callable[[], T]) -> T:
    """Run blocking git work; a missing revision or path answers as the Hub's errors do."""
    try:
        return await request.app[keys.HUB].run_blocking(work)
    except repo_files.RevisionNotFound as exc:
        raise RevisionNotFound(str(exc)) from None
    except repo_files.PathNotFound as exc:
        raise EntryNotFound(str(exc)) from None

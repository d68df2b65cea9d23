"""Mirrors of an upstream hub's repos: their names, starting a fetch, and the scan gate.

A mirrored model is served only once its fetch and its scan are done, and only when the
scan found nothing unsafe (nor suspicious, where the `mirror_suspicious` setting blocks).
"""

from __future__ import annotations

import json
import re
from typing import Any

from amphub import db
from amphub.errors import BadRequest, Conflict, Forbidden, Unavailable
from amphub.policy.names import check_model_id
from amphub.services.hub import Hub
from amphub.services.models import create_model
from amphub.services.tasks import enqueue
from amphub.storage.repo_files import RevisionNotFound, list_refs, resolve

ACTIVE = ("queued", "running")
RETRY_SECONDS = 2
# The Hub's repo ids: an optional organisation, a name; no `--` or `..` anywhere.
REPO_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
COMMIT_ID = re.compile(r"[0-9a-f]{40}")


def check_repo(repo: str) -> str:
    """An upstream repo id as huggingface_hub accepts it; BadRequest otherwise."""
    if not REPO_ID.fullmatch(repo) or "--" in repo or ".." in repo:
        raise BadRequest(f"invalid repo {repo[:200]!r}: expected org/name or name")
    mirror_model_id(repo)
    return repo


def check_revision(revision: str) -> str:
    """A branch, tag or commit id (40 hex digits) of the upstream to mirror."""
    if not REVISION.fullmatch(revision) or ".." in revision:
        raise BadRequest(
            f"invalid revision {revision[:200]!r}: give a branch, a tag or a commit id"
        )
    return revision


def mirror_model_id(repo: str) -> str:
    """The model id of an upstream repo: `org/name` is `org__name`, `name` stays `name`."""
    org, _, name = repo.rpartition("/")
    return check_model_id(f"{org}__{name}" if org else name)


def upstream_repo(model_id: str) -> str:
    """The upstream repo a mirror's model id names (Hub organisations hold no `_`)."""
    org, sep, name = model_id.partition("__")
    return f"{org}/{name}" if sep else model_id


async def upstream_of_space(hub: Hub, space_id: str) -> db.Upstream | None:
    """The upstream whose mirror space this is, if any."""
    return next((u for u in await db.UPSTREAMS.all(hub.db) if u.space_id == space_id), None)


async def start_mirror(
    hub: Hub, upstream: db.Upstream, repo: str, revision: str, by: str
) -> db.Task:
    """Queue the fetch of an upstream repo at a revision, making its model if needed.

    A fetch of the model already queued or running is returned instead of a second one.
    """
    task = await _start(hub, upstream, repo, revision, by, first_use=False)
    assert task is not None  # only a first use leaves a model alone
    return task


async def start_on_first_use(
    hub: Hub, upstream: db.Upstream, repo: str, revision: str, by: str
) -> db.Task | None:
    """`start_mirror` for a model asked for that did not exist; None if it does now."""
    return await _start(hub, upstream, repo, revision, by, first_use=True)


async def _start(
    hub: Hub, upstream: db.Upstream, repo: str, revision: str, by: str, *, first_use: bool
) -> db.Task | None:
    model_id = mirror_model_id(repo)
    async with hub.locks.hold(("mirror", upstream.space_id, model_id)):  # one at a time
        model = await db.get_model(hub.db, upstream.space_id, model_id)
        if model is not None and first_use:
            return None
        if model is None:
            await create_model(hub, upstream.space_id, model_id, repo, upstream.visibility, by)
            model = await db.get_model(hub.db, upstream.space_id, model_id)
            if model is None:
                raise Conflict(f"model {upstream.space_id}/{model_id} was deleted meanwhile")
        await db.record_mirror(hub.db, model.space_id, model.id, upstream.name, repo)
        fetching = await db.latest_task(hub.db, "mirror", model.space_id, model.id)
        if fetching and fetching.status in ACTIVE:
            return fetching
        params = {"upstream": upstream.name, "repo": repo, "revision": revision}
        return await enqueue(hub, "mirror", model, revision, None, params, by)


async def fetch_missing_revision(
    hub: Hub, model: db.Model, mirror: db.Mirror, revision: str, by: str
) -> None:
    """Start fetching a revision a mirrored model lacks and say to come back (Unavailable).

    Nothing if its upstream is no longer registered; `Forbidden` with the failure if the
    last fetch of that revision failed, so that asking again does not fetch again.
    """
    upstream = await db.UPSTREAMS.get(hub.db, mirror.upstream)
    if upstream is None:
        return
    name = f"{model.space_id}/{model.id} (the mirror of {mirror.repo} on {mirror.upstream})"
    fetch = await db.latest_task(hub.db, "mirror", model.space_id, model.id, ref=revision)
    if fetch is not None and fetch.status not in (*ACTIVE, "succeeded"):
        raise Forbidden(f"{name} could not be fetched at {revision}: {fetch.message}")
    task = await start_mirror(hub, upstream, mirror.repo, check_revision(revision), by)
    raise not_yet(
        f"{name} is being fetched at {revision} from upstream {upstream.name}, task {task.id}"
    )


class NotYetServed(Unavailable):
    """A mirrored model (or revision) being fetched or scanned: served once that is done."""


def not_yet(message: str) -> NotYetServed:
    """A 503 that says why, that the client retries and when it may (Retry-After)."""
    return NotYetServed(
        f"{message}; amphub will serve it once it is fetched and scanned: ask again"
        f" in a few seconds (huggingface_hub retries by itself)",
        headers={"Retry-After": str(RETRY_SECONDS)},
    )


async def check_mirror_servable(
    hub: Hub, model: db.Model, mirror: db.Mirror, served: tuple[str, str], by: str
) -> None:
    """Nothing if the commit `served` (revision, commit id) is scanned and servable; else why not.

    The verdict is that commit's own scan: a scan of another revision vouches for nothing
    here. A commit not scanned yet gets a scan queued (by `by`). Raises `Unavailable` (503,
    Retry-After) while the model is fetched or the commit scanned; `Forbidden` with the
    scan's findings when it found the commit unsafe, or when a fetch or scan failed.
    """
    space_id, model_id = model.space_id, model.id
    name = f"{space_id}/{model_id} (the mirror of {mirror.repo} on {mirror.upstream})"
    revision, commit = served
    fetch = await db.latest_task(hub.db, "mirror", space_id, model_id, ref=revision)
    if fetch is not None and fetch.status in ACTIVE:
        raise not_yet(f"{name} is being fetched: {fetch.message or 'queued'}")
    if fetch is not None and fetch.status != "succeeded":
        raise Forbidden(f"{name} could not be fetched: {fetch.message}")
    scan = await db.last_scan(hub.db, space_id, model_id, commit_id=commit, result=False)
    if scan is None:
        latest = await db.latest_task(hub.db, "scan", space_id, model_id)
        if latest is not None and latest.status not in ACTIVE and latest.commit_id == commit:
            raise Forbidden(f"{name} is not served: its scan {latest.status}: {latest.message}")
        if latest is None or latest.status not in ACTIVE:
            await enqueue(hub, "scan", model, revision, commit, {}, by)
        raise not_yet(f"{name} is being scanned at {commit[:12]}")
    refusal = await _refusal(hub, scan.id)
    if refusal:
        raise Forbidden(f"{name} is not served: {refusal}")


async def _refusal(hub: Hub, scan_id: int) -> str:
    """Why a finished scan keeps its commit out, "" if it does not; read once per process."""
    refusal = hub.scan_refusals.get(scan_id)
    if refusal is None:
        scan = await db.get_task(hub.db, scan_id)
        if scan is None or not scan.result:  # gone since: nothing vouches for the commit
            return "its scan left no result"
        text = scan.result
        refusal = scan_refusal(hub, await hub.run_blocking(lambda: json.loads(text))) or ""
        hub.scan_refusals.put(scan_id, refusal, len(refusal) + 64)
    return refusal


def scan_refusal(hub: Hub, result: dict[str, Any]) -> str | None:
    """Why a scan's result keeps its commit out (`mirror_suspicious` says what blocks); None."""
    # A file the scanner could not read ("error") is vouched for no more than a suspicious one.
    strict = hub.config.mirror_suspicious == "block"
    blocked = ("unsafe", "error", "suspicious") if strict else ("unsafe",)
    if result.get("summary", {}).get("status") not in blocked:
        return None
    findings = [
        f"{path}: {'; '.join(f['message'] for f in verdict.get('findings', []))}"
        for path, verdict in result.get("files", {}).items()
        if verdict["status"] in blocked
    ]
    return f"its scan found it {result['summary']['status']} ({' | '.join(findings)[:2000]})"


async def check_mirror_tips_servable(hub: Hub, model: db.Model, by: str) -> None:
    """For a mirrored model, nothing if every branch and tag tip is servable; else why not.

    git and LFS hand out the whole model rather than one revision, so every tip's own scan
    must let it out, as `check_mirror_servable` judges each.
    """
    mirror = await db.get_mirror(hub.db, model.space_id, model.id)
    if mirror is None:
        return
    refs = await hub.run_blocking(lambda: list_refs(hub.repos.path(model.space_id, model.id)))
    for ref in refs["branches"] + refs["tags"]:
        await check_mirror_servable(hub, model, mirror, (ref["name"], ref["commit"]), by)


async def check_revision_servable(hub: Hub, model: db.Model, revision: str, by: str) -> None:
    """For a mirrored model, nothing if the commit `revision` names is servable; else why not.

    A revision that names nothing passes: the reader that follows says it is not found.
    """
    mirror = await db.get_mirror(hub.db, model.space_id, model.id)
    if mirror is None:
        return
    path = hub.repos.path(model.space_id, model.id)
    try:
        commit = await hub.run_blocking(lambda: resolve(path, revision))
    except RevisionNotFound:
        return
    await check_mirror_servable(hub, model, mirror, (revision, commit), by)

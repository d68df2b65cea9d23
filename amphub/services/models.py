"""Models: creating, changing and deleting one, each written once for every adapter."""

from __future__ import annotations

from dataclasses import dataclass

from amphub import db
from amphub.services.cards import refresh_card
from amphub.services.hub import Hub
from amphub.services.objects import collect
from amphub.services.scans import RefScan, ref_scan
from amphub.storage.repo_files import list_refs


async def create_model(
    hub: Hub, space_id: str, model_id: str, name: str, visibility: str, owner: str
) -> None:
    """The model's row, then its repository with a first commit on master, then its card.

    Raises Conflict if the space has a model of that id. A repository that cannot be made
    takes the row away again.
    """
    await db.insert_model(hub.db, space_id, model_id, name, visibility, owner)
    path = hub.repos.path(space_id, model_id)
    try:
        await hub.run_blocking(lambda: hub.repos.create(path, name, owner))
    except BaseException:
        await db.delete_model_row(hub.db, space_id, model_id)
        raise
    await refresh_card(hub, space_id, model_id)


async def change_model(
    hub: Hub,
    space_id: str,
    model_id: str,
    by: str,
    *,
    name: str | None = None,
    visibility: str | None = None,
) -> None:
    """Rename a model or change its visibility."""
    detail = ", ".join(f"{k}={v}" for k, v in (("name", name), ("visibility", visibility)) if v)
    audit = db.Audit(by, "change_model", space_id, model_id, detail=detail)
    await db.update_model(hub.db, space_id, model_id, audit, name=name, visibility=visibility)
    if name:  # the name is part of what search looks in
        await refresh_card(hub, space_id, model_id)


async def delete_model(hub: Hub, model: db.Model, audit: db.Audit) -> list[str]:
    """Delete a model's row and links, then its repository; returns the oids it linked.

    The caller collects those objects that no other model references.
    """
    oids = await db.model_oids(hub.db, model.space_id, model.id)
    await db.delete_model_row(hub.db, model.space_id, model.id, audit)
    path = hub.repos.path(model.space_id, model.id)
    lock = hub.repos.lock(path)

    def remove() -> None:
        with lock:
            hub.repos.delete(path)

    async with hub.locks.hold(("repository", model.space_id, model.id)):
        await hub.run_blocking(remove)
    return oids


async def remove_model(hub: Hub, model: db.Model, by: str) -> None:
    """Delete a model for a user, then collect its objects in the background."""
    audit = db.Audit(by, "delete_model", model.space_id, model.id)
    oids = await delete_model(hub, model, audit)
    hub.background.spawn(collect(hub, oids), f"collect objects of {model.id}")


@dataclass(frozen=True)
class ModelDetails:
    """What a model's page and its API answer show beyond the model's row."""

    size: int  # the git repository on disk
    lfs_size: int  # the LFS objects the model links
    refs: dict[str, list[dict[str, str]]]
    card: tuple[str | None, str] | None  # (commit, card JSON) once indexed
    last_scan: db.Task | None
    master_scan: RefScan
    replicas: list[db.Replica]
    deployments: list[db.Deployment]


async def model_details(hub: Hub, model: db.Model) -> ModelDetails:
    """A model's size, branches and tags, card, scans, replicas and deployments."""
    space_id, model_id = model.space_id, model.id
    path = hub.repos.path(space_id, model_id)

    def read() -> tuple[int, dict[str, list[dict[str, str]]]]:
        if not path.is_dir():  # its creation is still making the repository
            return 0, {"branches": [], "tags": []}
        return hub.repos.size(path), list_refs(path)

    size, refs = await hub.run_blocking(read)
    master = next((ref["commit"] for ref in refs["branches"] if ref["name"] == "master"), None)
    return ModelDetails(
        size=size,
        lfs_size=await db.model_lfs_bytes(hub.db, space_id, model_id),
        refs=refs,
        card=await db.get_card(hub.db, space_id, model_id),
        last_scan=await db.last_scan(hub.db, space_id, model_id),
        master_scan=await ref_scan(hub, space_id, model_id, "master", master),
        replicas=await db.list_replicas(hub.db, space_id, model_id),
        deployments=await db.list_deployments(hub.db, space_id, model_id),
    )

"""The sync task: copy a model at one commit to a peer amphub in another zone.

Order matters: the space and model are made on the peer if missing, then the LFS objects
of the commit that the peer lacks are uploaded, and only then is the ref pushed. A replica
therefore never points at a commit whose LFS objects are missing. The batch API tells
which objects the peer lacks, so a sync that is run again (after a network failure or a
restart) sends only what has not arrived.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from amphub import db
from amphub.git.push import PushInterrupted, PushRefused, push_ref
from amphub.policy.sealed import unseal
from amphub.services.tasks import TaskContext, TaskFailed
from amphub.storage.repo_files import qualify, walk_files
from amphub.tasks.peer import Peer, PeerRefused, PeerUnreachable

# Waits between attempts when the peer cannot be reached; then the task fails.
RETRY_DELAYS = (1, 2, 4, 8, 16)
PROGRESS_SECONDS = 0.5


def replica_ref(ref: str, qualified: str | None, commit: str) -> str:
    """The ref the peer gets: the same branch or tag, or a tag naming a bare commit."""
    if qualified:
        return qualified
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return f"refs/tags/sync-{commit[:12]}"
    raise TaskFailed(f"no branch, tag or commit {ref}")


@dataclass
class Transfer:
    """What a sync has sent so far, for its progress reports."""

    objects: int = 0
    bytes: int = 0
    total_objects: int = 0
    total_bytes: int = 0
    git_objects: int = 0
    reported_at: float = field(default=0.0)

    def message(self) -> str:
        """The progress line."""
        return (
            f"LFS {self.objects}/{self.total_objects} objects,"
            f" {self.bytes}/{self.total_bytes} bytes"
        )


async def run_sync(ctx: TaskContext) -> dict[str, Any]:
    """Sync the task's commit to its zone, retrying while the peer is unreachable."""
    task = ctx.task
    ref, commit_id = ctx.revision()
    zone_name = ctx.params["zone"]
    zone = await db.ZONES.get(ctx.hub.db, zone_name)
    if zone is None:
        raise TaskFailed(f"zone {zone_name} is no longer registered")
    for delay in (*RETRY_DELAYS, None):
        try:
            result = await _sync_once(ctx, zone)
        except (PeerUnreachable, PushInterrupted) as exc:
            if delay is None:
                raise TaskFailed(f"zone {zone.name} unreachable: {exc}") from None
            await ctx.progress(0, 1, f"zone {zone.name} unreachable ({exc}); retrying")
            await asyncio.sleep(delay)
        except (PeerRefused, PushRefused) as exc:
            raise TaskFailed(f"zone {zone.name} refused: {exc}") from None
        else:
            await db.record_replica(
                ctx.hub.db, task.space_id, task.model_id, zone.name, ref, commit_id
            )
            return result
    raise AssertionError("unreachable")


async def _sync_once(ctx: TaskContext, zone: db.Zone) -> dict[str, Any]:
    hub, task = ctx.hub, ctx.task
    database = hub.db
    space = await db.get_space(database, task.space_id)
    model = await db.get_model(database, task.space_id, task.model_id)
    path = hub.repos.path(task.space_id, task.model_id)
    if space is None or model is None or not path.is_dir():
        raise TaskFailed(f"model {task.space_id}/{task.model_id} no longer exists")
    rev, commit_id = ctx.revision()
    named = await hub.run_blocking(lambda: qualify(path, rev))
    qualified, sha = named if named else (None, commit_id)
    ref = replica_ref(rev, qualified, commit_id)
    _, files = await hub.run_blocking(lambda: walk_files(path, commit_id))
    objects = sorted({(f.lfs.oid, f.lfs.size) for f in files if f.lfs})
    key = unseal(hub.secret, zone.sealed_key)
    peer = Peer(zone.url, zone.user, key)
    try:
        await peer.ensure_space(
            {
                "id": space.id,
                "name": space.name,
                "quota": space.quota,
                "billing_mode": space.billing_mode,
            }
        )
        await peer.ensure_model(
            space.id, {"id": model.id, "name": model.name, "visibility": model.visibility}
        )
        transfer = await _send_objects(ctx, peer, f"{space.id}/{model.id}", ref, objects)
    finally:
        await peer.close()
    await ctx.progress(99, 100, f"{transfer.message()}; pushing {ref}")
    transfer.git_objects = await hub.run_blocking(
        lambda: push_ref(path, zone.url, zone.user, key, f"{space.id}/{model.id}", ref, sha)
    )
    return {
        "zone": zone.name,
        "ref": ref,
        "commit": commit_id,
        "lfs_objects": len(objects),
        "lfs_objects_sent": transfer.objects,
        "lfs_bytes_sent": transfer.bytes,
        "git_objects_sent": transfer.git_objects,
    }


async def _send_objects(
    ctx: TaskContext, peer: Peer, repo: str, ref: str, objects: list[tuple[str, int]]
) -> Transfer:
    """Upload the objects the peer lacks, reporting objects and bytes as they go."""
    hub, task = ctx.hub, ctx.task
    linked = await db.linked_object_sizes(
        hub.db, task.space_id, task.model_id, [oid for oid, _ in objects]
    )
    store = hub.objects
    for oid, _ in objects:
        if oid not in linked or await store.size(oid) is None:
            raise TaskFailed(f"LFS object {oid} of this commit is not stored here; push it first")
    needed = await peer.missing_objects(repo, ref, objects)
    transfer = Transfer(total_objects=len(needed), total_bytes=sum(item["size"] for item in needed))
    await ctx.progress(0, 1, transfer.message())

    async def sent(count: int) -> None:
        transfer.bytes += count
        now = time.monotonic()
        if now - transfer.reported_at >= PROGRESS_SECONDS:
            transfer.reported_at = now
            await ctx.progress(transfer.bytes, transfer.total_bytes, transfer.message())

    for item in needed:
        await peer.upload(item, store.read(item["oid"]), sent)
        transfer.objects += 1
        await ctx.progress(transfer.bytes, transfer.total_bytes, transfer.message())
    return transfer

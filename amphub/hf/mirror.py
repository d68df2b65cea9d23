"""The mirror task: fetch an upstream repo at a revision through the Hub's HTTP API.

amphub is here a client of an upstream hub (huggingface.co, a corporate mirror, another
amphub), using only what huggingface_hub uses: model info with `blobs=true` for the file
list (the paged tree listing of the commit where the info names files only), `resolve`
for the content, following its redirects (to a CDN: aiohttp drops the token on another
host). LFS content streams into the object store, hashed as it comes; what the store holds
already (same sha256) is linked, not fetched. A regular file above 10 MiB (where amphub's
preupload answer sends a Hub upload to LFS) streams into scratch space, hashed, and becomes
an LFS object, as such an upload does. The files then become one commit on the model's
branch (an upstream commit id: on the default branch's head, tagged mirror/<id>), made as
a Hub commit is, and a scan is queued: amphub.services.mirror serves the model only once
that scan passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp
from yarl import URL

from amphub import db
from amphub.errors import ApiError, BadRequest
from amphub.hf.commit import check_path
from amphub.hf.repo import default_branch, list_entries, resolve_revision
from amphub.hf.treewrite import (
    Addition,
    CommitPlan,
    Deletion,
    create_ref,
    write_commit,
    write_tagged_commit,
)
from amphub.hf.upload import REGULAR_FILE_LIMIT
from amphub.policy.sealed import unseal
from amphub.services.hub import Hub
from amphub.services.leases import claim
from amphub.services.mirror import COMMIT_ID
from amphub.services.push import RefUpdate, push_target
from amphub.services.quota import link_reserved, reserve_quota, room_left
from amphub.services.scan_pool import judge_stored_object
from amphub.services.tasks import TaskContext, TaskFailed, enqueue
from amphub.storage.objects import check_oid, fill
from amphub.storage.repo_files import MIRROR_TAGS, LfsPointer, RevisionNotFound, qualify, resolve

READ_PIECE = 4 * 1024 * 1024
PROGRESS_SECONDS = 0.5
# LFS objects fetched at the same time: the Hub's clients use 8 connections.
FETCHES_AT_ONCE = 4
# Pages of a tree listing are followed up to this many files (the Hub sends 1000 a page).
MAX_TREE_ENTRIES = 1_000_000
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)


class Upstream:
    """One session with an upstream hub, with its token if it has one."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(timeout=TIMEOUT, headers=headers)

    async def close(self) -> None:
        """End the session."""
        await self._session.close()

    async def refusal(self, resp: aiohttp.ClientResponse) -> TaskFailed:
        """The task's failure for an upstream's answer that is not the one asked for."""
        text = (await resp.text(errors="replace"))[:300]
        message = resp.headers.get("X-Error-Message") or text
        return TaskFailed(f"the upstream answered {resp.status} for {resp.url.path}: {message}")

    async def model_info(self, repo: str, revision: str) -> dict[str, Any]:
        """The repo at a revision, with each file's size and LFS sha256 (blobs=true)."""
        url = f"{self.url}/api/models/{repo}/revision/{quote(revision, safe='')}"
        async with self._session.get(url, params={"blobs": "true"}) as resp:
            if resp.status != 200:
                raise await self.refusal(resp)
            info: dict[str, Any] = await resp.json()
        if not COMMIT_ID.fullmatch(str(info.get("sha"))) or not isinstance(
            info.get("siblings"), list
        ):
            raise TaskFailed(f"the upstream's model info of {repo} has no commit id or siblings")
        return info

    def resolve_url(self, repo: str, commit: str, path: str) -> str:
        """Where a file's content is at a commit."""
        return f"{self.url}/{repo}/resolve/{commit}/{quote(path)}"

    async def read(self, url: str, size: int) -> bytes:
        """A small file's whole content, of the size its file list says."""
        async with self._session.get(url) as resp:
            if resp.status != 200:
                raise await self.refusal(resp)
            data = bytearray()
            async for piece in resp.content.iter_chunked(READ_PIECE):
                data += piece
                if len(data) > size:
                    break
        if len(data) != size:
            raise TaskFailed(f"{url}: {len(data)} bytes, not the {size} its file list says")
        return bytes(data)

    async def tree(self, repo: str, commit: str) -> list[dict[str, Any]]:
        """Every file of a commit as the tree listing shows it, following its `Link` pages.

        A next page is read only from the upstream's own origin.
        """
        url: URL | None = URL(f"{self.url}/api/models/{repo}/tree/{commit}")
        params: dict[str, str] | None = {"recursive": "true"}
        entries: list[dict[str, Any]] = []
        while url is not None:
            if url.origin() != URL(self.url).origin() or len(entries) > MAX_TREE_ENTRIES:
                raise TaskFailed(f"the upstream's tree listing of {repo} runs away")
            async with self._session.get(url, params=params) as resp:
                if resp.status != 200:
                    raise await self.refusal(resp)
                page = await resp.json()
                following = resp.links["next"].get("url") if "next" in resp.links else None
            if not isinstance(page, list):
                raise TaskFailed(f"the upstream's tree listing of {repo} is not a list")
            entries += page
            url, params = (url.join(URL(str(following))) if following else None), None
        return [
            entry for entry in entries if isinstance(entry, dict) and entry.get("type") == "file"
        ]

    def stream(self, url: str) -> Any:
        """The response of a file's content (an async context manager)."""
        return self._session.get(url)


async def _store(hub: Hub, upstream: Upstream, url: str, oid: str, size: int, sent: Any) -> None:
    """Stream an object into the store; its upload checks size and sha256 before keeping it."""
    store = hub.objects
    upload = await store.open_upload(oid, size)
    try:
        async with upstream.stream(url) as resp:
            if resp.status != 200:
                raise await upstream.refusal(resp)
            await fill(upload, _counted(resp.content.iter_any(), sent))
        async with hub.locks.hold(("object", oid)):
            await upload.commit()
    except BaseException:
        await upload.abort()
        raise


async def _counted(chunks: AsyncIterator[bytes], sent: Any) -> AsyncIterator[bytes]:
    """The chunks, each told to `sent` (the task's progress) as it passes."""
    async for chunk in chunks:
        await sent(len(chunk))
        yield chunk


class _ScratchFile:
    """A regular file of `size` bytes streamed into scratch space, hashed on the way."""

    def __init__(self, hub: Hub, out: BinaryIO, url: str, size: int) -> None:
        self.hub, self.out, self.url, self.size = hub, out, url, size
        self.received = 0
        self.digest = hashlib.sha256()

    def accept(self, length: int) -> None:
        """Count bytes about to come; more than the file list says ends the task."""
        self.received += length
        if self.received > self.size:
            raise TaskFailed(f"{self.url}: more than the {self.size} bytes its file list says")

    async def add(self, data: bytes) -> None:
        """Hash and write a piece off the event loop."""
        await self.hub.run_blocking(partial(self._write, data))

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)


async def _scratch_copy(
    hub: Hub, upstream: Upstream, url: str, size: int, scratch: Path, sent: Any
) -> str:
    """Stream a file of `size` bytes into a scratch file, hashing it on the way; its sha256."""
    with scratch.open("wb") as out:
        copy = _ScratchFile(hub, out, url, size)
        async with upstream.stream(url) as resp:
            if resp.status != 200:
                raise await upstream.refusal(resp)
            await fill(copy, _counted(resp.content.iter_any(), sent))
    if copy.received != size:
        raise TaskFailed(f"{url}: {copy.received} bytes, not the {size} its file list says")
    return copy.digest.hexdigest()


async def _store_from(hub: Hub, scratch: Path, oid: str, size: int) -> None:
    """Put a scratch file whose sha256 is known into the store, a piece at a time."""
    upload = await hub.objects.open_upload(oid, size)
    try:
        with scratch.open("rb") as source:
            while piece := await hub.run_blocking(lambda: source.read(READ_PIECE)):
                upload.accept(len(piece))
                await upload.add(piece)
        async with hub.locks.hold(("object", oid)):
            await upload.commit()
    except BaseException:
        await upload.abort()
        raise


async def _store_regular(
    hub: Hub, upstream: Upstream, url: str, size: int, space: db.Space, model_id: str, sent: Any
) -> LfsPointer:
    """A large regular file as an LFS object of the model, as a Hub commit makes it.

    Its sha256 is known only once it is read: it streams into scratch space first (memory
    stays bounded), and is then reserved, stored unless the store holds it, and linked.
    """
    fd, name = tempfile.mkstemp(dir=hub.objects.tmp, prefix="mirror-")
    os.close(fd)
    scratch = Path(name)
    try:
        oid = await _scratch_copy(hub, upstream, url, size, scratch, sent)
        await _check_room(hub, space, {oid: size}, 0)
        async with claim(hub, oid):  # garbage collection waits for the link
            if await hub.objects.size(oid) != size:
                await _store_from(hub, scratch, oid, size)
            await link_reserved(hub, space.id, model_id, oid, size)
    finally:
        scratch.unlink(missing_ok=True)
    return LfsPointer(oid, size)


def _files(siblings: list[Any]) -> tuple[dict[str, LfsPointer], dict[str, int]]:
    """(LFS files by path, regular files' sizes by path) of a model info's siblings.

    Nothing an upstream says is trusted: paths are checked as a Hub commit's are, and
    oids before any path in the store is made of them.
    """
    lfs, regular = {}, {}
    try:
        for sibling in siblings:
            path = check_path(sibling["rfilename"])
            if sibling.get("lfs"):
                size = int(sibling["lfs"]["size"])
                lfs[path] = LfsPointer(check_oid(str(sibling["lfs"]["sha256"])), size)
            else:
                size = regular[path] = int(sibling["size"])
            if size < 0:
                raise ValueError(f"{path}: a negative size")
    except (KeyError, TypeError, ValueError, BadRequest) as exc:
        raise TaskFailed(f"the upstream's file list is not the Hub's: {exc}") from None
    return lfs, regular


def _sibling(entry: dict[str, Any]) -> dict[str, Any]:
    """A tree listing's file as model info's `siblings` show it (its LFS oid as `sha256`)."""
    sibling = {"rfilename": entry.get("path"), "size": entry.get("size")}
    lfs = entry.get("lfs")
    if isinstance(lfs, dict):
        sibling["lfs"] = {"sha256": lfs.get("oid"), "size": lfs.get("size")}
    return sibling


async def _siblings(upstream: Upstream, repo: str, info: dict[str, Any]) -> list[Any]:
    """The files of the model info, with their sizes and LFS oids.

    An upstream whose model info names files only (as the Hub's listings do) is asked
    for its tree listing of the commit, which has the rest.
    """
    siblings: list[Any] = info["siblings"]
    if all(isinstance(s, dict) and "size" in s for s in siblings):
        return siblings
    return [_sibling(entry) for entry in await upstream.tree(repo, info["sha"])]


async def _check_room(hub: Hub, space: db.Space, objects: dict[str, int], inline: int) -> None:
    """Reserve the LFS content, then check the regular files fit: before any byte is fetched."""
    try:
        await reserve_quota(hub, space, objects)
        if inline > max(await room_left(hub, space), 0):
            raise TaskFailed(
                f"space {space.id} has no room for the {inline} bytes of regular files"
            )
    except ApiError as exc:
        raise TaskFailed(str(exc)) from None


async def run_mirror(ctx: TaskContext) -> dict[str, Any]:
    """Fetch the task's upstream repo at its revision into its model, then queue a scan."""
    hub, task, params = ctx.hub, ctx.task, ctx.params
    config = await db.UPSTREAMS.get(hub.db, params["upstream"])
    space = await db.get_space(hub.db, task.space_id)
    model = await db.get_model(hub.db, task.space_id, task.model_id)
    if config is None:
        raise TaskFailed(f"upstream {params['upstream']} is no longer registered")
    if space is None or model is None:
        raise TaskFailed(f"model {task.space_id}/{task.model_id} no longer exists")
    if COMMIT_ID.fullmatch(params["revision"]):  # an upstream commit never changes
        path = hub.repos.path(space.id, model.id)
        tagged = await hub.run_blocking(lambda: qualify(path, MIRROR_TAGS + params["revision"]))
        if tagged is not None:
            return {"upstream": config.name, "repo": params["repo"], "commit": tagged[1]}
    token = unseal(hub.secret, config.sealed_token) if config.sealed_token else None
    upstream = Upstream(config.url, token)
    try:
        fetched = await _fetch(ctx, upstream, space, params["repo"], params["revision"])
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TaskFailed(
            f"upstream {config.name} unreachable: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        await upstream.close()
    commit_id = await _commit(ctx, params, fetched)
    scan = await enqueue(hub, "scan", model, params["revision"], commit_id, {}, task.created_by)
    return {
        "upstream": config.name,
        "repo": params["repo"],
        "upstream_commit": fetched.commit,
        "commit": commit_id,
        "files": len(fetched.additions),
        "lfs_objects_fetched": fetched.objects,
        "lfs_bytes_fetched": fetched.bytes,
        "lfs_objects_scanned": fetched.judged,
        "scan": scan.id,
    }


class Fetched:
    """What a fetch brought: the commit's files and what it cost."""

    def __init__(self, commit: str) -> None:
        self.commit = commit
        self.additions: list[Addition] = []
        self.objects = 0
        self.judged = 0
        self.bytes = 0
        self.total = 0
        self.reported_at = 0.0

    def message(self) -> str:
        """The progress line."""
        return f"fetched {self.objects} LFS objects, {self.bytes}/{self.total} bytes"


async def _fetch(
    ctx: TaskContext, upstream: Upstream, space: db.Space, repo: str, revision: str
) -> Fetched:
    hub, task = ctx.hub, ctx.task
    info = await upstream.model_info(repo, revision)
    fetched = Fetched(info["sha"])
    lfs, regular = _files(await _siblings(upstream, repo, info))
    large = {path: size for path, size in regular.items() if size > REGULAR_FILE_LIMIT}
    objects = {pointer.oid: pointer.size for pointer in lfs.values()}
    await _check_room(hub, space, objects, sum(regular.values()))
    stored = {oid for oid, size in objects.items() if await hub.objects.size(oid) == size}
    missing = set(objects) - stored
    fetched.total = sum(objects[oid] for oid in missing) + sum(large.values())
    await ctx.progress(0, 1, fetched.message())

    async def sent(count: int) -> None:
        fetched.bytes += count
        now = time.monotonic()
        if now - fetched.reported_at >= PROGRESS_SECONDS:
            fetched.reported_at = now
            await ctx.progress(fetched.bytes, fetched.total, fetched.message())

    async def bring(oid: str, path: str, size: int) -> None:
        async with fetching, claim(hub, oid):  # garbage collection waits for the link
            if oid in missing:
                url = upstream.resolve_url(repo, fetched.commit, path)
                await _store(hub, upstream, url, oid, size, sent)
                fetched.objects += 1
            await link_reserved(hub, task.space_id, task.model_id, oid, size)
        if oid in missing and await judge_stored_object(hub, path, oid, size):
            fetched.judged += 1  # while the others still come: the scan finds it judged

    async def bring_large(path: str, size: int) -> None:
        async with fetching:
            url = upstream.resolve_url(repo, fetched.commit, path)
            lfs[path] = await _store_regular(hub, upstream, url, size, space, task.model_id, sent)

    fetching = asyncio.Semaphore(FETCHES_AT_ONCE)
    by_oid = {pointer.oid: (path, pointer.size) for path, pointer in reversed(lfs.items())}
    try:
        async with asyncio.TaskGroup() as group:  # one failing stops the others
            for oid, (path, size) in by_oid.items():
                group.create_task(bring(oid, path, size))
            for path, size in large.items():
                group.create_task(bring_large(path, size))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    fetched.additions = [Addition(path, lfs=pointer) for path, pointer in lfs.items()]
    for path, size in regular.items():
        if path not in large:
            url = upstream.resolve_url(repo, fetched.commit, path)
            fetched.additions.append(Addition(path, await upstream.read(url, size)))
    return fetched


async def _commit(ctx: TaskContext, params: dict[str, Any], fetched: Fetched) -> str:
    """One commit that holds exactly the upstream's files, on the branch the revision names.

    An upstream commit id names no branch: its commit is made on the default branch's head
    and tagged mirror/<id>, which clients asking for that id are served.
    """
    hub, task = ctx.hub, ctx.task
    path = hub.repos.path(task.space_id, task.model_id)
    lock = hub.repos.lock(path)
    revision = params["revision"]
    author = f"{task.created_by} <{task.created_by}@amphub>".encode()
    when = int(hub.clock().timestamp())
    upstream_paths = {addition.path for addition in fetched.additions}

    def plan_on(head: str) -> CommitPlan:
        stale = [
            Deletion(entry.path, False)
            for entry in list_entries(path, head, "", True)
            if entry.type == "file" and entry.path not in upstream_paths
        ]
        return CommitPlan(
            f"Mirror {params['repo']} at {fetched.commit[:12]} from {params['upstream']}",
            f"Upstream commit: {fetched.commit}",
            operations=[*stale, *fetched.additions],
        )

    def plan_and_write() -> RefUpdate:
        if COMMIT_ID.fullmatch(revision):
            head = resolve(path, default_branch())
            tag = f"refs/tags/{MIRROR_TAGS}{revision}".encode()
            return write_tagged_commit(path, lock, tag, head, plan_on(head), author, when)
        try:
            head = resolve_revision(path, revision)
        except RevisionNotFound:  # a new branch starts from the default branch's head
            head = resolve(path, default_branch())
            create_ref(
                path, lock, f"refs/heads/{revision}".encode(), head.encode(), author, when, ""
            )
        return write_commit(path, lock, revision, plan_on(head), author, when)

    target = push_target(hub, task.created_by, task.space_id, task.model_id)
    async with hub.locks.hold(("repository", task.space_id, task.model_id)):
        update = await hub.run_blocking(target.moving(plan_and_write))
    return update.new.decode()

"""Moving a model between hubs that cannot reach each other: one file, out and in.

The file is a tar, written and read as a stream: `manifest.json` (what the file holds),
`model.bundle` (a git bundle of the revision's history), then `lfs/<oid>` for each LFS
object that history names. An import trusts nothing in it: the bundle is read as a
push's pack is, its tip must be the manifest's commit, every LFS object is hashed as it
is stored, and the model is scanned before the import says it is done. Whatever refuses
the file takes the new model away again, with its objects.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from amphub import db
from amphub.errors import QuotaExceeded
from amphub.git.bundle import (
    BadBundle,
    history_pointers,
    read_bundle_head,
    store_bundle_pack,
    write_bundle,
)
from amphub.policy import Action, lifetime
from amphub.policy.names import check_model_id
from amphub.services.hub import Hub
from amphub.services.leases import claim
from amphub.services.mirror import check_revision, scan_refusal
from amphub.services.models import create_model, delete_model
from amphub.services.objects import collect
from amphub.services.push import ZERO, RefUpdate, push_target
from amphub.services.quota import link_reserved, quota_message, reserve_quota, room_left
from amphub.services.spaces import space_lifetime, space_status
from amphub.services.tasks import enqueue, run_here
from amphub.storage.objects import PIECE, ObjectMismatch, check_oid
from amphub.storage.repo_files import RevisionNotFound, resolve
from amphub.storage.repos import DEFAULT_BRANCH
from amphub.tasks.scan import run_scan
from amphub.units import human_size

FORMAT = "amphub-model"
VERSION = 1
MANIFEST = "manifest.json"
BUNDLE = "model.bundle"
OBJECTS = "lfs/"
MAX_MANIFEST = 16 * 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
# Imported models are the space's members' only, until someone says otherwise.
VISIBILITY = "private"
# What a space's lifetime must allow for an import: what making a model there takes.
CREATE = Action.CREATE_MODEL


class AirGapRefused(Exception):
    """An export or import that cannot be done; the message says why."""


@dataclass(frozen=True)
class Manifest:
    """What an export file holds: the model, its revision and commit, its LFS objects."""

    model: str  # space/model on the hub it came from
    name: str
    revision: str
    commit: str
    objects: dict[str, int]  # oid -> size
    card: dict[str, Any] | None

    def to_json(self) -> bytes:
        """The manifest as the file holds it."""
        objects = [{"oid": oid, "size": size} for oid, size in self.objects.items()]
        fields = {"format": FORMAT, "version": VERSION, **self.__dict__, "objects": objects}
        return json.dumps(fields, indent=1).encode()

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """A manifest read from a file; AirGapRefused if it is not one this hub reads."""
        try:
            fields = json.loads(data)
            if fields.get("format") != FORMAT or fields.get("version") != VERSION:
                raise ValueError(f"not an {FORMAT} file of version {VERSION}")
            objects: dict[str, int] = {}
            for item in fields["objects"]:
                size = item["size"]
                if not isinstance(size, int) or size < 0:
                    raise ValueError(f"object {item['oid']!r} has no size")
                objects[check_oid(item["oid"])] = size
            commit = fields["commit"]
            if not isinstance(commit, str) or len(commit) != 40:
                raise ValueError("the commit is not a commit id")
            bytes.fromhex(commit)
            card = fields.get("card")
            return cls(
                str(fields["model"]),
                str(fields["name"])[:200],
                check_revision(str(fields["revision"])),
                commit,
                objects,
                card if isinstance(card, dict) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AirGapRefused(f"the file's manifest is not usable: {exc}") from None


# --- export -------------------------------------------------------------------------


async def export_model(
    hub: Hub, space_id: str, model_id: str, revision: str, file: Path
) -> list[str]:
    """Write a model at a revision into `file`; what was written, as sentences."""
    model = await db.get_model(hub.db, space_id, model_id)
    if model is None:
        raise AirGapRefused(f"no model {space_id}/{model_id}")
    check_revision(revision)
    path = hub.repos.path(space_id, model_id)
    try:
        commit = await hub.run_blocking(lambda: resolve(path, revision))
    except RevisionNotFound:
        raise AirGapRefused(f"{space_id}/{model_id} has no branch or tag {revision}") from None
    _, objects = await hub.run_blocking(lambda: history_pointers(path, commit))
    missing = [oid for oid, size in objects.items() if await hub.objects.size(oid) != size]
    if missing:
        raise AirGapRefused(
            f"{len(missing)} LFS objects of the history of {revision} are not stored here"
            f" (one is {missing[0]}): `amphub doctor` tells more"
        )
    card = await db.get_card(hub.db, space_id, model_id)
    manifest = Manifest(
        f"{space_id}/{model_id}",
        model.name,
        revision,
        commit,
        objects,
        json.loads(card[1]) if card else None,
    )
    # Written beside `file` and renamed into place whole; the bundle is spooled to learn its
    # size, which its tar header states first.
    fd, written = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    try:
        with open(fd, "wb") as out, tempfile.TemporaryFile(dir=file.parent) as bundle:
            async with hub.locks.hold(("repository", space_id, model_id)):
                ref = f"refs/heads/{revision}"
                await hub.run_blocking(lambda: write_bundle(path, ref, commit, bundle.write))
            await hub.run_blocking(lambda: _add_member(out, MANIFEST, manifest.to_json()))
            bundle_size = bundle.tell()
            bundle.seek(0)
            await hub.run_blocking(lambda: _add_file(out, BUNDLE, bundle, bundle_size))
            for oid, size in objects.items():
                await _add_object(hub, out, oid, size)
            await hub.run_blocking(lambda: _end(out))
        os.replace(written, file)
    finally:
        Path(written).unlink(missing_ok=True)
    lfs_bytes = sum(objects.values())
    return [
        f"exported {space_id}/{model_id} at {revision} ({commit[:12]}) into {file}:"
        f" its git history ({human_size(bundle_size)}) and {len(objects)} LFS objects"
        f" ({human_size(lfs_bytes)})"
    ]


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, int(time.time())
    return info.tobuf(tarfile.PAX_FORMAT)


def _pad(out: IO[bytes], size: int) -> None:
    out.write(b"\0" * (-size % BLOCK))


def _add_member(out: IO[bytes], name: str, data: bytes) -> None:
    out.write(_header(name, len(data)) + data)
    _pad(out, len(data))


def _add_file(out: IO[bytes], name: str, source: IO[bytes], size: int) -> None:
    out.write(_header(name, size))
    while piece := source.read(PIECE):
        out.write(piece)
    _pad(out, size)


async def _add_object(hub: Hub, out: IO[bytes], oid: str, size: int) -> None:
    await hub.run_blocking(lambda: out.write(_header(OBJECTS + oid, size)))
    written = 0
    async for piece in hub.objects.read(oid):
        written += len(piece)
        await hub.run_blocking(partial(out.write, piece))
    if written != size:
        raise AirGapRefused(f"LFS object {oid} changed while it was exported: export again")
    await hub.run_blocking(lambda: _pad(out, size))


def _end(out: IO[bytes]) -> None:
    """Two zero blocks end a tar; tar's own writer fills its last record too."""
    out.write(b"\0" * (2 * BLOCK))
    out.write(b"\0" * (-out.tell() % tarfile.RECORDSIZE))


# --- import -------------------------------------------------------------------------


class _Members:
    """The members of a tar read as a stream, one after another, each read on a thread."""

    def __init__(self, hub: Hub, tar: tarfile.TarFile) -> None:
        self.hub = hub
        self.tar = tar

    async def next(self) -> tuple[tarfile.TarInfo, IO[bytes]] | None:
        """The next member and its reader; None at the end; refused unless a regular file."""
        try:
            member = await self.hub.run_blocking(self.tar.next)
        except tarfile.TarError as exc:
            raise AirGapRefused(f"the file is not a whole tar: {exc}") from None
        if member is None:
            return None
        reader = self.tar.extractfile(member) if member.isreg() else None
        if reader is None:
            raise AirGapRefused(f"the file holds {member.name!r}, which is not a regular file")
        return member, reader

    async def expect(self, name: str) -> tuple[tarfile.TarInfo, IO[bytes]]:
        """The next member, which must be `name`."""
        found = await self.next()
        if found is None or found[0].name != name:
            got = repr(found[0].name) if found else "nothing more"
            raise AirGapRefused(f"the file holds {got} where {name} belongs")
        return found


async def import_model(hub: Hub, file: Path, space_id: str, name: str | None, by: str) -> list[str]:
    """Make a new model of space `space_id` from an export file; what was done, as sentences.

    The space's quota is checked before anything is copied; the model is scanned before
    this returns, and taken away again if the scan blocks it (`mirror_suspicious`).
    """
    space = await db.get_space(hub.db, space_id)
    if space is None or space_status(hub, space) is lifetime.Status.RELEASED:
        raise AirGapRefused(f"no space {space_id}")
    expired = lifetime.refusal(space_id, space_lifetime(hub, space), hub.clock(), CREATE)
    if expired:
        raise AirGapRefused(expired)
    try:
        with open(file, "rb") as source, tarfile.open(fileobj=source, mode="r|") as tar:
            return await _import_from(hub, _Members(hub, tar), space, name, by)
    except tarfile.TarError as exc:
        raise AirGapRefused(f"{file} is not a whole export file: {exc}") from None


async def _import_from(
    hub: Hub, members: _Members, space: db.Space, name: str | None, by: str
) -> list[str]:
    """`import_model` on the file's members, read in order."""
    space_id = space.id
    info, reader = await members.expect(MANIFEST)
    if info.size > MAX_MANIFEST:
        raise AirGapRefused(f"the file's manifest is larger than {MAX_MANIFEST} bytes")
    manifest = Manifest.parse(await hub.run_blocking(reader.read))
    model_id = check_model_id(name or manifest.model.rpartition("/")[2])
    if await db.get_model(hub.db, space_id, model_id) is not None:
        raise AirGapRefused(
            f"model {space_id}/{model_id} exists already: give the import another name with --name"
        )
    bundle = await members.expect(BUNDLE)
    await _reserve(hub, space, manifest.objects, bundle[0].size)
    await create_model(hub, space_id, model_id, manifest.name, VISIBILITY, space.creator)
    model = await db.get_model(hub.db, space_id, model_id)
    assert model is not None  # made just now, under a name the check found free
    try:
        await _copy(hub, model, manifest, bundle, members)
        await _move_refs(hub, model, manifest, by)
        warning = await _scan(hub, model, manifest, by)
    except BaseException:
        await _take_away(hub, model, manifest, by)
        raise
    lfs_bytes = sum(manifest.objects.values())
    said = [
        f"imported {manifest.model} at {manifest.revision} ({manifest.commit[:12]}) as"
        f" {space_id}/{model_id} ({VISIBILITY}): {len(manifest.objects)} LFS objects"
        f" ({human_size(lfs_bytes)}); its scan passed"
    ]
    return said + ([f"warning: {warning}"] if warning else [])


async def _reserve(hub: Hub, space: db.Space, objects: dict[str, int], git_bytes: int) -> None:
    """Reserve the LFS objects' room, then check the git history fits: before any copy."""
    await reserve_quota(hub, space, objects)
    room = await room_left(hub, space)
    if git_bytes > room:
        await db.release_reservations(hub.db, space.id, list(objects))
        raise QuotaExceeded(quota_message(space.id, space.quota - room, space.quota, git_bytes))


async def _copy(
    hub: Hub,
    model: db.Model,
    manifest: Manifest,
    bundle: tuple[tarfile.TarInfo, IO[bytes]],
    members: _Members,
) -> None:
    """The bundle's history into the model's repository, then each LFS object into the store."""
    path = hub.repos.path(model.space_id, model.id)
    lock = hub.repos.lock(path)
    info, reader = bundle
    limit = hub.config.max_git_file_size

    def read_history() -> tuple[dict[str, int], dict[str, int]]:
        with lock:
            ref, commit = read_bundle_head(reader.readline)
            if ref != f"refs/heads/{manifest.revision}" or commit != manifest.commit:
                raise BadBundle(
                    f"the bundle holds {ref} at {commit[:12]}, not the manifest's"
                    f" refs/heads/{manifest.revision} at {manifest.commit[:12]}"
                )
            store_bundle_pack(path, reader.read, info.size - reader.tell(), limit)
            return history_pointers(path, commit)

    try:
        async with hub.locks.hold(("repository", model.space_id, model.id)):
            tip, history = await hub.run_blocking(read_history)
    except BadBundle as exc:
        raise AirGapRefused(str(exc)) from None
    _check_objects(manifest.objects, tip, history)
    copied: set[str] = set()
    while (found := await members.next()) is not None:
        member, reader = found
        oid = member.name.removeprefix(OBJECTS)
        size = manifest.objects.get(oid)
        if not member.name.startswith(OBJECTS) or size is None or oid in copied:
            raise AirGapRefused(f"the file holds {member.name!r}, which its manifest does not")
        if member.size != size:
            raise AirGapRefused(f"{member.name} is {member.size} bytes, not {size}")
        await _store_object(hub, model, oid, size, reader)
        copied.add(oid)
    if len(copied) != len(manifest.objects):
        absent = sorted(set(manifest.objects) - copied)
        raise AirGapRefused(f"the file lacks {len(absent)} LFS objects (one is {absent[0]})")


def _check_objects(listed: dict[str, int], tip: dict[str, int], history: dict[str, int]) -> None:
    """The manifest lists the history's LFS objects: all of the tip's, none from elsewhere."""
    unknown = [oid for oid, size in listed.items() if history.get(oid) != size]
    if unknown:
        raise AirGapRefused(f"the manifest lists LFS object {unknown[0]}, which no file names")
    absent = [oid for oid in tip if oid not in listed]
    if absent:
        raise AirGapRefused(f"the file lacks LFS object {absent[0]} of the revision's files")


async def _store_object(hub: Hub, model: db.Model, oid: str, size: int, reader: IO[bytes]) -> None:
    """Copy one object into the store, hashed as it comes, and link it to the model."""
    async with claim(hub, oid):  # garbage collection waits for the link
        upload = await hub.objects.open_upload(oid, size)
        try:
            while piece := await hub.run_blocking(lambda: reader.read(PIECE)):
                upload.accept(len(piece))
                await upload.add(piece)
            async with hub.locks.hold(("object", oid)):
                await upload.commit()
        except ObjectMismatch as exc:
            await upload.abort()
            raise AirGapRefused(f"{OBJECTS}{oid} is not the object it names: {exc}") from None
        except BaseException:
            await upload.abort()
            raise
        await link_reserved(hub, model.space_id, model.id, oid, size)


async def _move_refs(hub: Hub, model: db.Model, manifest: Manifest, by: str) -> None:
    """Point the revision's branch, and master, at the imported commit, as a push does."""
    path = hub.repos.path(model.space_id, model.id)
    lock = hub.repos.lock(path)
    target = push_target(hub, by, model.space_id, model.id)
    new = manifest.commit.encode()

    def move() -> None:
        refs = {f"refs/heads/{manifest.revision}".encode(), DEFAULT_BRANCH}
        updated = []
        with lock, Repo(str(path)) as repo:
            for ref in sorted(refs):
                old = repo.refs.as_dict().get(Ref(ref), ZERO)
                repo.refs[Ref(ref)] = ObjectID(new)
                updated.append(RefUpdate(ref, old, new))
        target.record(updated)

    async with hub.locks.hold(("repository", model.space_id, model.id)):
        await hub.run_blocking(move)


async def _scan(hub: Hub, model: db.Model, manifest: Manifest, by: str) -> str | None:
    """Scan the imported commit here; refused if the scan blocks it, else its warning."""
    queued = await enqueue(hub, "scan", model, manifest.revision, manifest.commit, {}, by)
    task = await run_here(hub, {"scan": run_scan}, queued)
    if task.status != "succeeded":
        raise AirGapRefused(f"import refused: the scan {task.status}: {task.message}")
    result = json.loads(task.result or "{}")
    refusal = scan_refusal(hub, result)
    if refusal:
        raise AirGapRefused(f"import refused: {refusal}")
    status = result.get("summary", {}).get("status")
    if status in ("suspicious", "error"):
        return f"its scan found it {status}; see the model's page (mirror_suspicious = warn)"
    return None


async def _take_away(hub: Hub, model: db.Model, manifest: Manifest, by: str) -> None:
    """Delete a model whose import was refused, the objects it alone had, its reservations."""
    audit = db.Audit(by, "delete_model", model.space_id, model.id, detail="import refused")
    oids = await delete_model(hub, model, audit)
    await collect(hub, oids)
    await db.release_reservations(hub.db, model.space_id, list(manifest.objects))

"""The LFS batch API and object transfer: PUT streams to the store, GET uses sendfile."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import replace
from typing import Any

from aiohttp import web
from yarl import URL

from amphub import db
from amphub.errors import (
    DISK_FULL,
    DiskFull,
    HashAlgoUnsupported,
    LengthRequired,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
)
from amphub.http import keys
from amphub.http.access import SIGN_IN_NEEDED, require_model
from amphub.http.auth import URL_TOKEN
from amphub.http.body import BodyTooLong, field, json_object, read_body
from amphub.http.errors import LFS_MEDIA_TYPE
from amphub.http.object_body import object_response
from amphub.http.urls import model_ids, model_url
from amphub.policy import Action
from amphub.policy.tokens import TransferToken, key_fingerprint, make_token
from amphub.services.hub import Hub
from amphub.services.leases import claim, reservation_kept
from amphub.services.mirror import check_mirror_tips_servable
from amphub.services.objects import stored_object
from amphub.services.quota import link_reserved, release_reserved, reserve_quota
from amphub.storage.objects import (
    InvalidOid,
    ObjectMismatch,
    ObjectStore,
    check_oid,
    fill,
)
from amphub.units import human_size

MAX_BATCH_OBJECTS = 1000
OBJECT_LOST = "the server lost this object's content; push it again to restore it"
ACTION_SECONDS = 3600
# Upload bodies are handed to the writer thread in pieces of this size.
WRITE_PIECE = 4 * 1024 * 1024


def lfs_json(body: dict[str, Any], status: int = 200) -> web.Response:
    """An LFS answer with the LFS media type."""
    return web.json_response(body, status=status, content_type=LFS_MEDIA_TYPE)


def _object_error(oid: object, size: object, code: int, message: str) -> dict[str, Any]:
    return {"oid": oid, "size": size, "error": {"code": code, "message": message}}


def _requested_objects(body: dict[str, Any]) -> list[dict[str, Any]]:
    objects = field(body, "objects", list)
    if len(objects) > MAX_BATCH_OBJECTS:
        raise PayloadTooLarge(f"a batch may name at most {MAX_BATCH_OBJECTS} objects")
    return objects


def _valid(item: object) -> tuple[str, int] | dict:
    """(oid, size) of a requested object, or its per-object error."""
    if not isinstance(item, dict):
        return _object_error(None, None, 422, "each object needs an oid and a size")
    oid, size = item.get("oid"), item.get("size")
    if not isinstance(oid, str) or not isinstance(size, int) or isinstance(size, bool):
        return _object_error(oid, size, 422, "each object needs an oid and a size")
    try:
        check_oid(oid)
    except InvalidOid as exc:
        return _object_error(oid, size, 422, str(exc))
    if size < 0:
        return _object_error(oid, size, 422, "size must not be negative")
    return oid, size


async def transfer_token(request: web.Request, space_id: str, model_id: str) -> TransferToken:
    """A short-lived token for transfers to and from a model, for a signed-in caller."""
    name = request[keys.ACTOR].name
    if name is None:
        raise ValueError("an anonymous caller has no transfer token")
    user = await db.get_user(request.app[keys.HUB].db, name)
    if user is None:  # removed since the request signed in
        raise Unauthorized(SIGN_IN_NEEDED)
    expires = int(request.app[keys.HUB].clock().timestamp()) + ACTION_SECONDS
    token = TransferToken(name, f"{space_id}/{model_id}", key_fingerprint(user.key_hash), expires)
    held = request.get(keys.TOKEN)
    if held is not None:
        # Made from a token: no more rights, and no longer life, than that token.
        token = replace(
            token,
            expires=min(expires, held.expires),
            read_only=held.read_only,
            deployment=held.deployment,
        )
    return token


def _header(secret: bytes, token: TransferToken | None) -> dict[str, str]:
    """The transfer token as an action's header; nothing for an anonymous caller."""
    return {"Authorization": "Bearer " + make_token(secret, token)} if token else {}


def _upload_href(secret: bytes, href: str, oid: str, token: TransferToken | None) -> str:
    """The href, signed with a token good only for uploading this one object if given one."""
    if token is None:
        return href
    return str(URL(href).with_query({URL_TOKEN: make_token(secret, replace(token, oid=oid))}))


async def post_batch(request: web.Request) -> web.Response:
    """Say, per object, where to upload or download it."""
    space_id, model_id = model_ids(request)
    body = await json_object(request)
    operation = body.get("operation")
    if operation not in ("upload", "download"):
        raise Unprocessable("operation must be upload or download")
    if field(body, "hash_algo", str, "sha256") != "sha256":
        raise HashAlgoUnsupported("this server stores objects by sha256 only")
    transfers = field(body, "transfers", list, ["basic"])
    if "basic" not in transfers:
        raise Unprocessable("this server offers the basic transfer only")
    action = Action.WRITE_FILES if operation == "upload" else Action.READ_FILES
    access = await require_model(request, space_id, model_id, action)
    if action is Action.READ_FILES:
        hub = request.app[keys.HUB]
        await check_mirror_tips_servable(hub, access.model, access.who.name or "")
    space = access.space
    requested = [_valid(item) for item in _requested_objects(body)]
    wanted = dict(item for item in requested if isinstance(item, tuple))
    hub = request.app[keys.HUB]
    linked = await db.linked_object_sizes(hub.db, space_id, model_id, list(wanted))
    href = f"{model_url(request, space_id, model_id)}/info/lfs"
    secret = hub.secret
    signed_in = request[keys.ACTOR].name is not None
    token = await transfer_token(request, space_id, model_id) if signed_in else None
    header = _header(secret, token)
    # huggingface_hub, the client that also offers the Hub's own "multipart" transfer,
    # sends an upload to its href alone, without the action's header: its uploads come
    # through amphub, since a presigned PUT to the store needs its checksum header.
    signer = token if "multipart" in transfers else None
    direct = hub.objects.direct_uploads and signer is None and token is not None
    answer = []
    store: ObjectStore = hub.objects
    urls = await _store_urls(hub, list(linked), token) if operation == "download" else {}
    # The store is the truth: a linked object whose bytes are gone is asked for again, and
    # amphub offers no download of it.
    missing = await _missing(store, [oid for oid in linked if oid not in urls])
    if operation == "upload":
        uploads = {o: s for o, s in wanted.items() if o not in linked or o in missing}
        free = await store.free_bytes()
        if sum(uploads.values()) > free:
            raise DiskFull(
                f"{DISK_FULL}: it has {human_size(free)} free, and these objects need"
                f" {human_size(sum(uploads.values()))}"
            )
        await reserve_quota(hub, space, uploads)
        await store.prepare_folders(uploads)
    for item in requested:
        if isinstance(item, dict):
            answer.append(item)
            continue
        oid, size = item
        entry = {"oid": oid, "size": size, "authenticated": True}
        if operation == "upload" and (oid not in linked or oid in missing):
            upload = None
            # A small object through amphub is one request to the store, not the three of
            # a direct upload (HEAD and presigned PUT; HEAD at verify).
            if direct and size > WRITE_PIECE:
                upload = await _direct_upload(hub, access.model, oid, size, token)
            upload = upload or {
                "href": _upload_href(secret, f"{href}/objects/{oid}", oid, signer),
                "header": header,
                "expires_in": ACTION_SECONDS,
            }
            entry["actions"] = {
                "upload": upload,
                "verify": {
                    "href": f"{href}/verify",
                    "header": header,
                    "expires_in": ACTION_SECONDS,
                },
            }
        elif operation == "download":
            if oid not in linked:
                entry = _object_error(oid, size, 404, "object does not exist")
            elif oid in missing:
                entry = _object_error(oid, size, 404, OBJECT_LOST)
            else:
                entry["size"] = linked[oid]
                seconds = _seconds(hub, token)
                entry["actions"] = {
                    "download": _download(href, oid, header, seconds, urls.get(oid))
                }
        answer.append(entry)
    return lfs_json({"transfer": "basic", "objects": answer, "hash_algo": "sha256"})


def _seconds(hub: Hub, token: TransferToken | None) -> int:
    """How long an action stays good: an hour, and no longer than the token."""
    if token is None:
        return ACTION_SECONDS
    return max(1, min(ACTION_SECONDS, token.expires - int(hub.clock().timestamp())))


def upload_ticket(hub: Hub, model: db.Model, oid: str) -> str:
    """The name of a model's direct upload of an object: unguessable, the same at verify.

    A model made again under the same name (in a later second) gets other tickets: what
    the old one's uploads put links nothing to it.
    """
    message = f"{model.space_id}/{model.id}/{model.created_at}/{oid}".encode()
    return hmac.new(hub.secret, message, hashlib.sha256).hexdigest()[:32]


async def _direct_upload(
    hub: Hub, model: db.Model, oid: str, size: int, token: TransferToken | None
) -> dict[str, Any] | None:
    """An upload action straight to the store (presigned PUT, signed headers), if it takes it."""
    seconds = _seconds(hub, token)
    ticket = upload_ticket(hub, model, oid)
    presigned = await hub.objects.presign_upload(oid, size, ticket, seconds)
    if presigned is None:
        return None
    url, headers = presigned
    return {"href": url, "header": headers, "expires_in": seconds}


async def _missing(store: ObjectStore, oids: list[str]) -> set[str]:
    """Of `oids`, those the store does not have (one look each, all at once)."""
    sizes = await asyncio.gather(*(store.size(oid) for oid in oids))
    return {oid for oid, size in zip(oids, sizes, strict=True) if size is None}


async def _store_urls(hub: Hub, oids: list[str], token: TransferToken | None) -> dict[str, str]:
    """The store's own download URLs of objects, expiring with the token, if it gives them.

    An object offered by such a URL is not looked up first: the store answers the URL
    itself, with a 404 for an object it lost, which is the truth when the client comes; a
    look beforehand could promise nothing for the URL's hour, and costs S3 a signed request
    per object (1,000 of them kept the server's loop busy for about a second).
    """
    if not hub.config.s3_redirect:
        return {}
    seconds = _seconds(hub, token)
    urls = {oid: await hub.objects.download_url(oid, seconds) for oid in oids}
    return {oid: url for oid, url in urls.items() if url is not None}


def _download(
    href: str, oid: str, header: dict[str, str], seconds: int, url: str | None
) -> dict[str, Any]:
    """Where to download an object: the store's URL if it gave one, else amphub's."""
    if url is None:
        return {"href": f"{href}/objects/{oid}", "header": header, "expires_in": seconds}
    return {"href": url, "expires_in": seconds}


async def _link_direct_upload(
    hub: Hub, space: db.Space, model: db.Model, oid: str, size: int
) -> dict[str, int]:
    """Adopt and link an object this model put into the store; {oid: size} once linked.

    Found, it is kept from garbage collection from before the look until it is linked;
    another verify of it waits for the look and links it again, which changes nothing.
    """
    ticket = upload_ticket(hub, model, oid)
    async with claim(hub, oid):  # garbage collection waits for the link
        async with hub.locks.hold(("object", oid)):
            stored = await hub.objects.adopt(oid, ticket)
        if stored is None:
            return {}
        if stored != size:
            raise Unprocessable(f"object has size {stored}, not {size}")
        if not await db.reservation_live(hub.db, space.id, oid):
            await reserve_quota(hub, space, {oid: size})
        await link_reserved(hub, space.id, model.id, oid, size)
    return {oid: size}


def _oid(request: web.Request) -> str:
    try:
        return check_oid(request.match_info["oid"])
    except InvalidOid as exc:
        raise Unprocessable(str(exc)) from None


async def put_object(request: web.Request) -> web.Response:
    """Receive an object: streamed and hashed to a temporary file, moved in only when right."""
    space_id, model_id = model_ids(request)
    oid = _oid(request)
    space = (await require_model(request, space_id, model_id, Action.WRITE_FILES)).space
    size = request.content_length
    if size is None:
        raise LengthRequired("an object upload needs a Content-Length")
    hub = request.app[keys.HUB]
    if not await db.reservation_live(hub.db, space_id, oid):  # the batch call's lapsed
        await reserve_quota(hub, space, {oid: size})
    async with (
        reservation_kept(hub, space_id, oid, size) as reserved,
        claim(hub, oid, reserved=reserved),  # garbage collection waits for the link
    ):
        try:
            await _receive(request, oid, size)
        except BaseException:
            await release_reserved(hub, space_id, oid)
            raise
        await link_reserved(hub, space_id, model_id, oid, size)  # gives the reservation back
    return web.Response(status=200)


async def _receive(request: web.Request, oid: str, size: int) -> None:
    """Stream the body into the store; the loop reads while threads hash and write."""
    try:
        if size <= WRITE_PIECE:
            await _receive_small(request, oid, size)
        else:
            await _receive_large(request, oid, size)
    except ObjectMismatch as exc:
        raise Unprocessable(str(exc)) from None


async def _receive_small(request: web.Request, oid: str, size: int) -> None:
    try:
        data = await read_body(request, size)
    except BodyTooLong:
        raise ObjectMismatch(f"more than the announced {size} bytes were sent") from None
    if len(data) != size:
        raise ObjectMismatch(f"received {len(data)} bytes, expected {size}")
    hub = request.app[keys.HUB]
    async with hub.locks.hold(("object", oid)):
        await hub.small_writes.put(oid, data)


async def _receive_large(request: web.Request, oid: str, size: int) -> None:
    hub = request.app[keys.HUB]
    store: ObjectStore = hub.objects
    upload = await store.open_upload(oid, size)
    try:
        await fill(upload, request.content.iter_any())
        async with hub.locks.hold(("object", oid)):
            await upload.commit()
    except BaseException:
        await upload.abort()
        raise


async def get_object(request: web.Request) -> web.StreamResponse:
    """Send an object linked to this model, with Range support and sendfile."""
    space_id, model_id = model_ids(request)
    oid = _oid(request)
    access = await require_model(request, space_id, model_id, Action.READ_FILES)
    await check_mirror_tips_servable(request.app[keys.HUB], access.model, access.who.name or "")
    size = await stored_object(request.app[keys.HUB], space_id, model_id, oid)
    if size is None:
        raise NotFound("object does not exist")
    headers = {"Content-Type": "application/octet-stream"}
    return await object_response(request, oid, size, headers)


async def post_verify(request: web.Request) -> web.Response:
    """Confirm that an uploaded object is stored and linked to this model.

    An object put straight into the store is linked here, once it is found with its size
    and this model's upload ticket: the store took only bytes that hash to the oid. A
    linked object the store had lost went straight to its key: there is nothing to adopt.
    """
    space_id, model_id = model_ids(request)
    access = await require_model(request, space_id, model_id, Action.WRITE_FILES)
    body = await json_object(request)
    checked = _valid(body)
    if isinstance(checked, dict):
        raise Unprocessable(checked["error"]["message"])
    oid, size = checked
    hub = request.app[keys.HUB]
    linked = await db.linked_object_sizes(hub.db, space_id, model_id, [oid])
    if oid not in linked and hub.objects.direct_uploads:
        linked = await _link_direct_upload(hub, access.space, access.model, oid, size)
    if oid not in linked:
        raise NotFound("object does not exist")
    if linked[oid] != size:
        raise Unprocessable(f"object has size {linked[oid]}, not {size}")
    return lfs_json({"oid": oid, "size": size})

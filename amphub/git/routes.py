"""Git smart-HTTP: info/refs for both services, git-upload-pack and git-receive-pack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from dulwich.errors import GitProtocolError, HangupException
from dulwich.protocol import ReceivableProtocol, pkt_line
from dulwich.repo import Repo
from dulwich.server import DictBackend, Handler, UploadPackHandler

from amphub import db, keys
from amphub.access import require_model
from amphub.cardindex import refresh_card
from amphub.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from amphub.git.bridge import BodyTooLarge, StreamBridge, run_streamed
from amphub.git.receive import EMPTY_PACK_BYTES, AmphubReceivePackHandler, RefUpdate
from amphub.git.repos import DEFAULT_BRANCH, repo_path
from amphub.git.upload import serve_upload_pack
from amphub.names import check_model_id, check_space_id
from amphub.policy import Action
from amphub.quota import push_quota_message
from amphub.usage import room_left

T = TypeVar("T")

log = logging.getLogger("amphub.git")

SERVICES: dict[str, tuple[type[Handler], Action]] = {
    "git-upload-pack": (UploadPackHandler, Action.READ_FILES),
    "git-receive-pack": (AmphubReceivePackHandler, Action.WRITE_FILES),
}
# Wants and haves of a fetch, as git http-backend's GIT_HTTP_MAX_REQUEST_BUFFER; a pack
# pushed to receive-pack is limited by the quota instead.
MAX_NEGOTIATION_BODY = 10 * 1024 * 1024
NO_CACHE = {
    "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
    "Pragma": "no-cache",
    "Cache-Control": "no-cache, max-age=0, must-revalidate",
}


def model_ids(request: web.Request) -> tuple[str, str]:
    """The space and model ids of a git URL, with the optional `.git` suffix removed."""
    space_id = check_space_id(request.match_info["space"])
    model_id = request.match_info["model"].removesuffix(".git")
    return space_id, check_model_id(model_id)


def service_of(name: str | None) -> tuple[type[Handler], Action]:
    """The dulwich handler and the permission a smart-HTTP service needs."""
    if name not in SERVICES:
        raise BadRequest(
            "amphub speaks the smart HTTP protocol only: ask for service=git-upload-pack"
            " or service=git-receive-pack (git 1.6.6 or newer does)"
        )
    return SERVICES[name]


@dataclass(frozen=True)
class ServiceCall:
    """A smart-HTTP request that passed the checks: what to run on which repository."""

    handler_cls: type[Handler]
    path: Path
    space: db.Space
    model: db.Model


async def _open_service(request: web.Request, service: str | None) -> ServiceCall:
    handler_cls, action = service_of(service)
    space_id, model_id = model_ids(request)
    access = await require_model(request, space_id, model_id, action)
    path = repo_path(request.app[keys.CONFIG], space_id, model_id)
    if not path.is_dir():
        raise NotFound(f"no model {space_id}/{model_id}")
    return ServiceCall(handler_cls, path, access.space, access.model)


async def get_info_refs(request: web.Request) -> web.StreamResponse:
    """Advertise the refs and capabilities of a service."""
    service = request.query.get("service")
    call = await _open_service(request, service)
    response = web.StreamResponse(
        headers={"Content-Type": f"application/x-{service}-advertisement", **NO_CACHE}
    )

    def advertise(bridge: StreamBridge) -> None:
        bridge.write(pkt_line(f"# service={service}\n".encode()) + pkt_line(None))
        with Repo(str(call.path)) as repo:
            proto = ReceivableProtocol(bridge.recv, bridge.write)
            backend = DictBackend({b".": repo})
            call.handler_cls(
                backend, [b"."], proto, stateless_rpc=True, advertise_refs=True
            ).handle()

    await run_streamed(request, response, advertise)
    return response


async def post_service(request: web.Request) -> web.StreamResponse:
    """Run one stateless round of upload-pack or receive-pack, streaming both ways."""
    service = request.match_info["service"]
    call = await _open_service(request, service)
    if request.content_type != f"application/x-{service}-request":
        raise UnsupportedMediaType(f"expected Content-Type application/x-{service}-request")
    if call.handler_cls is UploadPackHandler:
        return await _upload_pack(request, call)
    return await _receive_pack(request, call)


async def _upload_pack(request: web.Request, call: ServiceCall) -> web.StreamResponse:
    if (request.content_length or 0) > MAX_NEGOTIATION_BODY:
        raise PayloadTooLarge(f"git request too large: more than {MAX_NEGOTIATION_BODY} bytes")
    response = _result_response("git-upload-pack")

    def serve(bridge: StreamBridge) -> None:
        serve_upload_pack(call.path, bridge.recv, bridge.write)

    await _run_service(request, response, call, serve, MAX_NEGOTIATION_BODY)
    return response


async def push_room(app: web.Application, space: db.Space) -> tuple[int, str]:
    """Bytes a push may still add to the space, and the sentence that refuses a bigger one.

    Every way of moving refs (git push, a Hugging Face commit) checks against this.
    """
    room = await room_left(app, space)
    return room, "push refused: " + push_quota_message(space.id, space.quota - room, space.quota)


async def after_push(
    app: web.Application, space_id: str, model_id: str, user: str, updated: list[RefUpdate]
) -> None:
    """Record a push that moved refs, and re-read the card if master moved."""
    database = app[keys.DB]
    now = database.now()
    pushes = [
        db.Push(space_id, model_id, user, u.ref.decode(), u.old.decode(), u.new.decode(), now)
        for u in updated
    ]
    await db.record_pushes(database, pushes)
    if any(u.ref == DEFAULT_BRANCH for u in updated):
        app[keys.BACKGROUND].spawn(
            refresh_card(app, space_id, model_id), f"index {space_id}/{model_id}"
        )


@dataclass(frozen=True)
class PushTarget:
    """Where a push goes and who makes it: what its record needs."""

    app: web.Application
    loop: asyncio.AbstractEventLoop
    space_id: str
    model_id: str
    user: str

    def record(self, updated: list[RefUpdate]) -> None:
        """On the git thread that moved the refs: run `after_push` and wait for it.

        Every way of moving refs (git push, a Hugging Face commit, branch or tag) ends here.
        Made from that thread, the record follows the refs, not the request: aiohttp
        cancels the handler of a client that hangs up (git does once it has read the
        report, which is sent after this), and a shutdown cancels the handlers left.
        """
        if updated:
            after = after_push(self.app, self.space_id, self.model_id, self.user, updated)
            asyncio.run_coroutine_threadsafe(after, self.loop).result()

    def moving(self, move: Callable[[], RefUpdate]) -> Callable[[], RefUpdate]:
        """`move` (git work that moves one ref or raises), then its record, on one thread."""

        def move_and_record() -> RefUpdate:
            update = move()
            self.record([update])
            return update

        return move_and_record


def push_target(request: web.Request, space_id: str, model_id: str) -> PushTarget:
    """The target of a push the request makes; called on the event loop."""
    user = request[keys.ACTOR].name or ""
    return PushTarget(request.app, asyncio.get_running_loop(), space_id, model_id, user)


async def _receive_pack(request: web.Request, call: ServiceCall) -> web.StreamResponse:
    room, refusal = await push_room(request.app, call.space)
    lock = request.app[keys.REPO_LOCKS].for_repo(call.path)
    response = _result_response("git-receive-pack")
    target = push_target(request, call.space.id, call.model.id)

    def serve(bridge: StreamBridge) -> None:
        with Repo(str(call.path)) as repo:
            proto = ReceivableProtocol(bridge.recv, bridge.write)
            backend = DictBackend({b".": repo})
            handler = AmphubReceivePackHandler(backend, [b"."], proto, stateless_rpc=True)
            handler.max_pack_bytes = max(room, EMPTY_PACK_BYTES)
            handler.quota_refusal = refusal
            try:
                with lock:
                    handler.handle()
            finally:
                target.record(handler.updated)

    await _run_service(request, response, call, serve, None)
    return response


def _result_response(service: str) -> web.StreamResponse:
    return web.StreamResponse(
        headers={"Content-Type": f"application/x-{service}-result", **NO_CACHE}
    )


async def _run_service(
    request: web.Request,
    response: web.StreamResponse,
    call: ServiceCall,
    serve: Callable[[StreamBridge], T],
    max_body: int | None,
) -> T | None:
    """Run a service; a failure before any output is a clean 400 or 413."""
    try:
        result, _ = await run_streamed(request, response, serve, max_body=max_body)
    except (BodyTooLarge, GitProtocolError, HangupException) as exc:
        if response.prepared:
            log.warning("git request to %s/%s ended early: %s", call.space.id, call.model.id, exc)
            response.force_close()
            return None
        if isinstance(exc, BodyTooLarge):
            raise PayloadTooLarge(f"git request too large: {exc}") from None
        raise BadRequest(f"malformed git request: {exc}") from None
    return result


def add_routes(app: web.Application) -> None:
    """Every git smart-HTTP path; `.git` at the end of the model is optional."""
    # Both segments exclude '/' and '%', so no id can carry a path separator.
    repo = "/{space:[A-Za-z0-9._-]+}/{model:[A-Za-z0-9._-]+}"
    app.router.add_get(repo + "/info/refs", get_info_refs)
    app.router.add_post(repo + "/{service:git-upload-pack|git-receive-pack}", post_service)

"""Git smart-HTTP: info/refs for both services, git-upload-pack and git-receive-pack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from aiohttp import web
from dulwich.errors import GitProtocolError, HangupException
from dulwich.protocol import ReceivableProtocol, pkt_line
from dulwich.repo import Repo
from dulwich.server import ReceivePackHandler, UploadPackHandler

from amphub import db
from amphub.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from amphub.git import protocol_v2
from amphub.git.backend import REPO_ARGS, one_repo_backend
from amphub.git.bridge import (
    BodyTooLarge,
    StreamBridge,
    body_spooled,
    run_streamed,
)
from amphub.git.receive import EMPTY_PACK_BYTES, AmphubReceivePackHandler
from amphub.git.upload import AmphubUploadPackHandler, serve_upload_pack
from amphub.git.warm import CloneWarmer
from amphub.http import keys
from amphub.http.access import require_model
from amphub.http.urls import model_ids
from amphub.policy import Action
from amphub.services.mirror import check_mirror_tips_servable
from amphub.services.push import push_target
from amphub.services.quota import push_room

T = TypeVar("T")

log = logging.getLogger("amphub.git")

ServiceHandler = type[UploadPackHandler] | type[ReceivePackHandler]
SERVICES: dict[str, tuple[ServiceHandler, Action]] = {
    "git-upload-pack": (AmphubUploadPackHandler, Action.READ_FILES),
    "git-receive-pack": (AmphubReceivePackHandler, Action.WRITE_FILES),
}
# Wants and haves of a fetch, as git http-backend's GIT_HTTP_MAX_REQUEST_BUFFER; a pack
# pushed to receive-pack is limited by the quota instead.
MAX_NEGOTIATION_BODY = 10 * 1024 * 1024
WARMER = web.AppKey("clone_warmer", CloneWarmer)
NO_CACHE = {
    "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
    "Pragma": "no-cache",
    "Cache-Control": "no-cache, max-age=0, must-revalidate",
}


def service_of(name: str | None) -> tuple[ServiceHandler, Action]:
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

    handler_cls: ServiceHandler
    path: Path
    space: db.Space
    model: db.Model


async def _open_service(request: web.Request, service: str | None) -> ServiceCall:
    handler_cls, action = service_of(service)
    space_id, model_id = model_ids(request)
    access = await require_model(request, space_id, model_id, action)
    if action is Action.READ_FILES:
        hub = request.app[keys.HUB]
        await check_mirror_tips_servable(hub, access.model, access.who.name or "")
    path = request.app[keys.HUB].repos.path(space_id, model_id)
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

    if call.handler_cls is AmphubUploadPackHandler and speaks_v2(request):
        await run_streamed(request, response, lambda bridge: protocol_v2.advertise(bridge.write))
        return response

    def advertise(bridge: StreamBridge) -> None:
        bridge.write(pkt_line(f"# service={service}\n".encode()) + pkt_line(None))
        with Repo(str(call.path)) as repo:
            proto = ReceivableProtocol(bridge.recv, bridge.write)
            backend = one_repo_backend(repo)
            call.handler_cls(
                backend, REPO_ARGS, proto, stateless_rpc=True, advertise_refs=True
            ).handle()

    await run_streamed(request, response, advertise)
    return response


async def post_service(request: web.Request) -> web.StreamResponse:
    """Run one stateless round of upload-pack or receive-pack, streaming both ways."""
    service = request.match_info["service"]
    call = await _open_service(request, service)
    if request.content_type != f"application/x-{service}-request":
        raise UnsupportedMediaType(f"expected Content-Type application/x-{service}-request")
    if call.handler_cls is AmphubUploadPackHandler:
        return await _upload_pack(request, call)
    return await _receive_pack(request, call)


async def _upload_pack(request: web.Request, call: ServiceCall) -> web.StreamResponse:
    response = _result_response("git-upload-pack")

    def serve(bridge: StreamBridge) -> None:
        if v2:
            protocol_v2.serve(call.path, bridge.recv(MAX_NEGOTIATION_BODY), bridge.write)
        else:
            serve_upload_pack(call.path, bridge.recv, bridge.write)

    v2 = speaks_v2(request)

    try:
        async with body_spooled(request, MAX_NEGOTIATION_BODY) as body:
            await _run_service(request, response, call, serve, body)
    except BodyTooLarge:
        raise PayloadTooLarge(
            f"git request too large: more than {MAX_NEGOTIATION_BODY} bytes"
        ) from None
    return response


async def _receive_pack(request: web.Request, call: ServiceCall) -> web.StreamResponse:
    room, refusal = await push_room(request.app[keys.HUB], call.space)
    lock = request.app[keys.HUB].repos.lock(call.path)
    response = _result_response("git-receive-pack")
    user = request[keys.ACTOR].name or ""
    hub = request.app[keys.HUB]
    target = push_target(hub, user, call.space.id, call.model.id)
    loop = asyncio.get_running_loop()

    def serve(bridge: StreamBridge) -> None:
        with Repo(str(call.path)) as repo:
            proto = ReceivableProtocol(bridge.recv, bridge.write)
            backend = one_repo_backend(repo)
            handler = AmphubReceivePackHandler(backend, REPO_ARGS, proto, stateless_rpc=True)
            handler.max_pack_bytes = max(room, EMPTY_PACK_BYTES)
            handler.quota_refusal = refusal
            handler.max_file_size = request.app[keys.HUB].config.max_git_file_size
            try:
                with lock:
                    handler.handle()
            finally:
                target.record(handler.updated, handler.push_options)
                if handler.updated:  # from this thread: a client that hangs up cancels the handler
                    loop.call_soon_threadsafe(request.app[WARMER].pushed, hub, call.path)

    # Past the room left, the handler refuses the pack with the quota's sentence.
    limit = max(room, EMPTY_PACK_BYTES) + MAX_NEGOTIATION_BODY
    # One push into a repository at a time, on any node: a failed push removes the
    # partial packs it finds, which would otherwise be another push's.
    hold = request.app[keys.HUB].locks.hold(("repository", call.space.id, call.model.id))
    async with body_spooled(request, limit, cut=True) as body, hold:
        await _run_service(request, response, call, serve, body)
    return response


def speaks_v2(request: web.Request) -> bool:
    """Whether the client asks for protocol v2 (upload-pack only; receive-pack stays v0)."""
    return protocol_v2.wants_v2(request.headers.get("Git-Protocol", ""))


def _result_response(service: str) -> web.StreamResponse:
    return web.StreamResponse(
        headers={"Content-Type": f"application/x-{service}-result", **NO_CACHE}
    )


async def _run_service(
    request: web.Request,
    response: web.StreamResponse,
    call: ServiceCall,
    serve: Callable[[StreamBridge], T],
    body: BinaryIO,
) -> T | None:
    """Run a service; a failure before any output is a clean 400."""
    try:
        result, _ = await run_streamed(request, response, serve, body)
    except (GitProtocolError, HangupException) as exc:
        if response.prepared:
            log.warning("git request to %s/%s ended early: %s", call.space.id, call.model.id, exc)
            response.force_close()
            return None
        raise BadRequest(f"malformed git request: {exc}") from None
    return result


def add_routes(app: web.Application) -> None:
    """Every git smart-HTTP path; `.git` at the end of the model is optional."""
    # Both segments exclude '/' and '%', so no id can carry a path separator.
    repo = "/{space:[A-Za-z0-9._-]+}/{model:[A-Za-z0-9._-]+}"
    app[WARMER] = CloneWarmer()
    app.router.add_get(repo + "/info/refs", get_info_refs)
    app.router.add_post(repo + "/{service:git-upload-pack|git-receive-pack}", post_service)

"""The error classes and the one middleware that renders every error for its client."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("amphub")

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
CHALLENGE = 'Basic realm="amphub", charset="UTF-8"'


class ApiError(Exception):
    """An error meant for the client: a status, a stable code and a sentence."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    """The request is malformed or breaks a rule."""


class InvalidName(ApiError):
    """A space, model or user id breaks its naming rule."""

    code = "invalid_name"


class Unauthorized(ApiError):
    """No valid credentials; the client should ask for them."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """Signed in, but not allowed."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """No such thing, or one the caller may not see."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The thing exists already."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """The request body is larger than this route accepts."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """The request body has the wrong Content-Type."""

    status = 415
    code = "unsupported_media_type"


class LengthRequired(ApiError):
    """The upload did not say how long it is."""

    status = 411
    code = "length_required"


class Unprocessable(ApiError):
    """Well-formed, but the content is wrong (a hash or size that does not match)."""

    status = 422
    code = "unprocessable"


class QuotaExceeded(ApiError):
    """The space has no room for what is asked."""

    status = 507
    code = "quota_exceeded"


class TooManyRequests(ApiError):
    """The client is refused for a while."""

    status = 429
    code = "too_many_requests"


def route_family(request: web.Request) -> str:
    """Which kind of client a path serves: `api`, `lfs` or `git`."""
    path = request.path
    if path.startswith("/api/"):
        return "api"
    if "/info/lfs/" in path or path.endswith("/info/lfs"):
        return "lfs"
    return "git"


def render(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """The error body in the shape that the route's client reads."""
    family = route_family(request)
    if family == "api":
        body = {"error": {"code": code, "message": message}}
        return web.json_response(body, status=status)
    if family == "lfs":
        body = {"message": message, "request_id": uuid.uuid4().hex}
        return web.Response(status=status, text=json.dumps(body), content_type=LFS_MEDIA_TYPE)
    # git prints a text/plain error body as "remote: …" lines.
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def _challenge_headers(request: web.Request) -> dict[str, str]:
    name = "LFS-Authenticate" if route_family(request) == "lfs" else "WWW-Authenticate"
    return {name: CHALLENGE}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ApiError, aiohttp's own HTTP errors and anything unexpected."""
    try:
        return await handler(request)
    except ApiError as exc:
        response = render(request, exc.status, exc.code, exc.message)
        if exc.status == 401:
            response.headers.update(_challenge_headers(request))
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        response = render(request, exc.status, code, exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return render(request, 500, "internal_error", "internal server error")

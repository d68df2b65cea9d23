"""The one table of statuses and the middleware that renders every error for its client."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import quote

from aiohttp import web

from amphub.errors import (
    DISK_FULL,
    ApiError,
    BadRequest,
    Conflict,
    DiskFull,
    Forbidden,
    InvalidName,
    LengthRequired,
    NotFound,
    NotOffered,
    PayloadTooLarge,
    PreconditionFailed,
    QuotaExceeded,
    RangeNotSatisfiable,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
    is_disk_full,
)
from amphub.http import keys
from amphub.http.headers import PAGE_HEADERS, SIGN_IN_PATH

log = logging.getLogger("amphub")

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
CHALLENGE = 'Basic realm="amphub", charset="UTF-8"'

# Each error's status; a subclass takes its nearest listed ancestor's.
STATUSES: dict[type[ApiError], int] = {
    BadRequest: 400,
    InvalidName: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    RequestTimeout: 408,
    Conflict: 409,
    LengthRequired: 411,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    RangeNotSatisfiable: 416,
    Unprocessable: 422,
    TooManyRequests: 429,
    NotOffered: 501,
    Unavailable: 503,
    QuotaExceeded: 507,
    DiskFull: 507,
}


def status_of(exc: ApiError) -> int:
    """The HTTP status an error answers with."""
    for cls in type(exc).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return 400


# The client each adapter package serves (static files, served by aiohttp, are pages).
FAMILIES = {
    "amphub.api": "api",
    "amphub.git": "git",
    "amphub.hf": "hf",
    "amphub.lfs": "lfs",
    "amphub.web": "web",
    "amphub.server": "api",  # /-/health, /-/ready and /-/metrics answer JSON too
}
# The only paths git itself asks for; every other path outside the API and LFS is a page.
GIT_SERVICE_PATH = re.compile(r"/(info/refs|git-upload-pack|git-receive-pack)$")
# The paths of the Hugging Face Hub API that amphub serves (amphub.hf).
HF_PATH = re.compile(r"/api/(models|repos|whoami-v2|validate-yaml)(/|$)|/[^/]+/[^/]+/resolve/")
# The Hub's error codes; huggingface_hub raises its own exception for each.
HF_ERROR_CODES = frozenset({"RepoNotFound", "RevisionNotFound", "EntryNotFound", "GatedRepo"})


def route_family(request: web.Request) -> str:
    """Which kind of client a route serves: `hf`, `api`, `lfs`, `git` or `web` (a browser).

    A route's family is the adapter package of its handler. Only a path that no route
    matches, which is answered with an error and nothing else, is judged by its look.
    """
    if request.match_info.http_exception is None:
        module = getattr(request.match_info.handler, "__module__", "") or ""
        return FAMILIES.get(".".join(module.split(".")[:2]), "web")
    path = request.path
    if HF_PATH.match(path):
        return "hf"
    if path.startswith("/api/"):
        return "api"
    if "/info/lfs/" in path or path.endswith("/info/lfs"):
        return "lfs"
    if GIT_SERVICE_PATH.search(path):
        return "git"
    return "web"


def sign_in_url(request: web.Request) -> str:
    """The sign-in page, coming back to this page afterwards."""
    return f"{SIGN_IN_PATH}?next={quote(request.path_qs, safe='')}"


def _page(request: web.Request, status: int, message: str) -> web.Response:
    """The error as a page in the site's layout (amphub.web draws it)."""
    error_page = request.app.get(keys.ERROR_PAGE)
    if error_page is None:  # an app without the pages
        text = f"{status} {HTTPStatus(status).phrase}: {message}\n"
        return web.Response(status=status, text=text, headers=PAGE_HEADERS)
    return error_page(request, status, message)


def render(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """The error body in the shape that the route's client reads."""
    family = route_family(request)
    if family == "hf":
        return _hf_error(request, status, code, message)
    if family == "api":
        return web.json_response({"error": {"code": code, "message": message}}, status=status)
    if family == "lfs":
        body = {"message": message, "request_id": uuid.uuid4().hex}
        # huggingface_hub uploads through the batch API too, and shows only this header.
        headers = {"X-Error-Message": _one_line(message)}
        return web.Response(
            status=status, text=json.dumps(body), content_type=LFS_MEDIA_TYPE, headers=headers
        )
    if family == "web":
        return _page(request, status, message)
    # git prints a text/plain error body as "remote: …" lines.
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def _one_line(message: str) -> str:
    """The message as a header value: line breaks and control characters may not be in one."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", message)


def _hf_error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """An error as the Hub answers it: huggingface_hub reads these headers and `error`."""
    headers = {"X-Error-Message": _one_line(message)}
    if code in HF_ERROR_CODES:
        headers["X-Error-Code"] = code
    elif status == 401 and "Authorization" in request.headers:
        # The Hub's words for refused credentials: with them the client does not take a
        # wrong key for a missing repository.
        headers["X-Error-Message"] = "Invalid credentials in Authorization header"
    return web.json_response({"error": message}, status=status, headers=headers)


def _unauthorized(request: web.Request, exc: ApiError) -> web.Response:
    """A browser is sent to the sign-in page; any other client gets the Basic challenge."""
    if route_family(request) == "web":
        if request.method in ("GET", "HEAD"):
            return web.Response(
                status=303, headers={**PAGE_HEADERS, "Location": sign_in_url(request)}
            )
        return render(request, 401, exc.code, exc.message)
    response = render(request, 401, exc.code, exc.message)
    response.headers.update(_challenge_headers(request))
    return response


def _api_sentence(request: web.Request, exc: web.HTTPException) -> str:
    """What an API client did wrong, for a path or method no route takes."""
    if exc.status == 405 and "Allow" in exc.headers:
        allowed = ", ".join(sorted(m.strip() for m in exc.headers["Allow"].split(",")))
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    if exc.status == 404 and request.match_info.http_exception is not None:
        return f"no API route {request.path}; the routes are in /api/v1/openapi.json"
    return exc.reason


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
        if status_of(exc) == 401:
            response = _unauthorized(request, exc)
        else:
            response = render(request, status_of(exc), exc.code, exc.message)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        message = _api_sentence(request, exc) if route_family(request) == "api" else exc.reason
        response = render(request, exc.status, code, message)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if is_disk_full(exc):
            log.error("disk full on %s %s: %s", request.method, request.path, exc)
            return render(request, 507, DiskFull.code, DISK_FULL)
        log.exception("unexpected error on %s %s", request.method, request.path)
        return render(request, 500, "internal_error", "internal server error")

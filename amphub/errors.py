"""The errors every layer raises for the client to read: a stable code and a sentence.

They say what went wrong, not how to answer it: `amphub.http.errors` holds the one table
that gives each its HTTP status, and renders it in the dialect of the route's client.
"""

from __future__ import annotations

import errno


class ApiError(Exception):
    """An error meant for the client: a stable code, a sentence, and headers it reads."""

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

    code = "unauthorized"


class Forbidden(ApiError):
    """Signed in, but not allowed."""

    code = "forbidden"


class NotFound(ApiError):
    """No such thing, or one the caller may not see."""

    code = "not_found"


class Conflict(ApiError):
    """The thing exists already, or changed under the caller."""

    code = "conflict"


class HashAlgoUnsupported(Conflict):
    """The client asked for a hash other than sha256 (git-lfs's 409)."""

    code = "hash_algo_unsupported"


class PayloadTooLarge(ApiError):
    """The request body is larger than this route accepts."""

    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """The request body has the wrong Content-Type."""

    code = "unsupported_media_type"


class RequestTimeout(ApiError, TimeoutError):
    """The request body came in too slowly.

    A TimeoutError too: aiohttp, draining what is left of a body after the answer, takes
    that for its own linger timeout and closes the connection without logging a traceback.
    """

    code = "request_timeout"


class LengthRequired(ApiError):
    """The upload did not say how long it is."""

    code = "length_required"


class PreconditionFailed(ApiError):
    """What the caller based its change on has moved (a branch's parent commit)."""

    code = "precondition_failed"


class Unprocessable(ApiError):
    """Well-formed, but the content is wrong (a hash or size that does not match)."""

    code = "unprocessable"


class RangeNotSatisfiable(ApiError):
    """The Range asks for bytes the file does not have."""

    code = "range_not_satisfiable"


class QuotaExceeded(ApiError):
    """The space has no room for what is asked."""

    code = "quota_exceeded"


class DiskFull(ApiError):
    """The server's disk has no room for what is asked, whatever the quota says."""

    code = "disk_full"


DISK_FULL = "the server's disk is full; ask an administrator to make room"


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error says the disk (or the user's disk quota) is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # SQLite's own words, from the database file or its write-ahead log.
    return type(exc).__name__ == "OperationalError" and "database or disk is full" in str(exc)


class TooManyRequests(ApiError):
    """The client is refused for a while."""

    code = "too_many_requests"


class Unavailable(ApiError):
    """Not yet: the client should ask again after the Retry-After its headers carry."""

    code = "unavailable"


class NotOffered(ApiError):
    """A part of a protocol that amphub does not offer."""

    code = "not_implemented"

"""The browser session: a signed cookie naming the user, and the CSRF token derived from it.

The cookie holds a random session id, the user name, a fingerprint of the user's current
key and an expiry, signed with HMAC-SHA256 under a key derived from the hub's signing secret.
It is HttpOnly and SameSite=Lax (and Secure behind https). Regenerating a key ends every
session opened with the old one, just as it voids the old key.

The CSRF token is an HMAC of the session id: another site can neither read it nor compute
it. Every unsafe request that the cookie could authenticate carries it, as the form field
`csrf` (pages) or the header `X-CSRF-Token` (the pages' calls to the JSON API); the sign-in
form carries it too, against signing a visitor in as someone else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from aiohttp import web

from amphub.errors import Forbidden
from amphub.http import keys
from amphub.http.errors import route_family

COOKIE = "amphub_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
LIFETIME_SECONDS = 7 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CSRF_REFUSED = "this form is out of date or came from another site; reload the page and try again"


class CsrfRefused(Forbidden):
    """An unsafe request without the session's CSRF token."""

    code = "csrf_refused"


@dataclass(frozen=True)
class Session:
    """One browser's session; `user` is None until it signs in."""

    id: str
    user: str | None
    key: str | None  # the fingerprint of the key the user signed in with
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: bytes, data: str) -> bytes:
    # A key of its own per purpose: a cookie is never a valid transfer token or CSRF token.
    key = hmac.new(secret, b"amphub web " + purpose, hashlib.sha256).digest()
    return hmac.new(key, data.encode(), hashlib.sha256).digest()


def encode(secret: bytes, session: Session) -> str:
    """The cookie value of a session."""
    payload = _b64(json.dumps(session.__dict__, separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(secret, b'session', payload))}"


def decode(secret: bytes, text: str, now: float) -> Session | None:
    """The session a cookie value holds, if its signature is right and it has not expired."""
    payload, _, signature = text.partition(".")
    try:
        if not hmac.compare_digest(_unb64(signature), _mac(secret, b"session", payload)):
            return None
        session = Session(**json.loads(_unb64(payload)))
    except (ValueError, TypeError, binascii.Error):
        return None
    return session if session.expires > now else None


def _now(request: web.Request) -> float:
    return request.app[keys.HUB].clock().timestamp()


def read(request: web.Request) -> Session | None:
    """The request's valid session, if it has one."""
    text = request.cookies.get(COOKIE)
    return decode(request.app[keys.HUB].secret, text, _now(request)) if text else None


def new(request: web.Request, user: str | None = None, key: str | None = None) -> Session:
    """A fresh session id (never one the browser had before), signed in or not."""
    expires = int(_now(request)) + LIFETIME_SECONDS
    return Session(secrets.token_urlsafe(24), user, key, expires)


def store(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    """Send the session to the browser."""
    base_url = request.app[keys.HUB].config.base_url or ""
    response.set_cookie(
        COOKIE,
        encode(request.app[keys.HUB].secret, session),
        max_age=LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.secure or base_url.startswith("https://"),
    )


def csrf_token(request: web.Request, session: Session) -> str:
    """The token that a page of this session puts in its forms."""
    return _b64(_mac(request.app[keys.HUB].secret, b"csrf", session.id))


async def check_csrf(request: web.Request, session: Session | None) -> None:
    """Refuse an unsafe request that does not carry its session's CSRF token."""
    sent: object = request.headers.get(CSRF_HEADER)
    if sent is None and route_family(request) == "web" and request.content_type in FORM_TYPES:
        sent = (await request.post()).get(CSRF_FIELD)
    expected = csrf_token(request, session).encode() if session else b""
    if not expected or not isinstance(sent, str):
        raise CsrfRefused(CSRF_REFUSED)
    if not hmac.compare_digest(sent.encode(errors="surrogateescape"), expected):
        raise CsrfRefused(CSRF_REFUSED)

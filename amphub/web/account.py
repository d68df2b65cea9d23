"""Signing in and out with a user name and key, and regenerating one's key."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from aiohttp import web

from amphub.api import users as users_api
from amphub.errors import ApiError
from amphub.http import session
from amphub.http.access import actor, user_name
from amphub.http.auth import authenticate
from amphub.http.errors import status_of
from amphub.http.headers import SIGN_IN_PATH
from amphub.policy.access_keys import hash_key
from amphub.policy.tokens import key_fingerprint
from amphub.web.view import page, redirect


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site.

    Browsers drop tabs and line breaks from an address and read a backslash as a slash,
    so a tab between two slashes would take them to another site: such paths are refused.
    """
    if not target or not target.startswith("/") or _unsafe_in_path(target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return "/" if target.startswith(SIGN_IN_PATH) else target


def _unsafe_in_path(target: str) -> bool:
    return "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)


async def get_sign_in(request: web.Request) -> web.StreamResponse:
    """The sign-in form."""
    target = safe_next(request.query.get("next"))
    if actor(request).signed_in:
        return redirect(target)
    return page(request, "sign_in.html", next=target, name="", error="")


async def post_sign_in(request: web.Request) -> web.StreamResponse:
    """Check the user name and key, then start a signed-in session with a new id."""
    form = await request.post()
    name, key = str(form.get("name", "")).strip(), str(form.get("key", "")).strip()
    target = safe_next(str(form.get("next", "")))
    try:
        user = await authenticate(request, name, key, tokens=False)
    except ApiError as exc:
        # A wrong key is the form's business; 401 would make a browser ask for Basic auth.
        status = 200 if status_of(exc) == 401 else status_of(exc)
        return page(
            request, "sign_in.html", status=status, next=target, name=name, error=exc.message
        )
    response = redirect(target)
    signed_in = session.new(request, user.name, key_fingerprint(user.key_hash))
    session.store(request, response, signed_in)
    return response


async def post_sign_out(request: web.Request) -> web.StreamResponse:
    """End the session: the browser gets a fresh one that names nobody."""
    response = redirect("/")
    session.store(request, response, session.new(request))
    return response


async def get_key(request: web.Request) -> web.Response:
    """The page that regenerates the caller's key."""
    user_name(actor(request))
    return page(request, "key.html", key=None)


async def post_key(request: web.Request) -> web.Response:
    """A new key made as the API makes it, shown once; this browser stays signed in."""
    user_name(actor(request))
    key = await users_api.new_own_key(request)
    response = page(request, "key.html", key=key)
    response.headers["Cache-Control"] = "no-store"
    state = session.read(request)
    if state is not None:
        # The same session, now bound to the new key: the page's forms stay valid.
        session.store(request, response, replace(state, key=key_fingerprint(hash_key(key))))
    return response

"""Who is asking: turns the Authorization header or the session cookie into an Actor."""

from __future__ import annotations

import base64
import binascii
import math

from aiohttp import web

from amphub import db
from amphub.errors import Forbidden, TooManyRequests, Unauthorized
from amphub.http import keys, session
from amphub.http.errors import Handler, route_family
from amphub.http.token_scope import token_may_use
from amphub.policy import Actor
from amphub.policy.access_keys import hash_key, key_matches
from amphub.policy.matrix import ANONYMOUS
from amphub.policy.tokens import InvalidToken, is_token, key_fingerprint, read_token
from amphub.services import sign_ins

AUTH_FAILED = "authentication failed: wrong user name or key"
# The query parameter of an upload href signed for one object (see `TransferToken.oid`).
URL_TOKEN = "signature"
TOKEN_NOT_HERE = (
    "a transfer or deploy token is good only for moving its own model's files;"
    " sign in with your user name and key"
)


def parse_authorization(header: str) -> tuple[str | None, str]:
    """(user name or None, key) from a Basic or Bearer header; Unauthorized if malformed."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return None, value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        name, sep, key = decoded.partition(":")
        if sep and key:
            return name, key
    raise Unauthorized("use HTTP Basic with user name and key, or Bearer with a key")


async def authenticate(
    request: web.Request, name: str | None, key: str, *, tokens: bool = True
) -> db.User:
    """The user a key (or, with `tokens`, a token) belongs to; failures are counted.

    The name, if given, must be the user's.
    """
    hub = request.app[keys.HUB]
    address = request.remote or "unknown"
    wait = await sign_ins.retry_after(hub, address)
    if wait:
        seconds = math.ceil(wait)
        raise TooManyRequests(
            f"too many failed sign-ins from your address; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
        )
    if is_token(key):
        user = await _token_user(request, key) if tokens else None
        if user and name not in (None, user.name):
            user = None
    else:
        user = await db.get_user_by_key_hash(hub.db, hash_key(key))
        if user and (not key_matches(user.key_hash, key) or name not in (None, user.name)):
            user = None
    if user is None:
        await sign_ins.record_failure(hub, address)
        raise Unauthorized(AUTH_FAILED)
    if user.disabled:
        raise Forbidden(f"the account {user.name} is disabled; ask an administrator")
    return user


async def actor_for(request: web.Request) -> Actor:
    """The signed-in user, or the anonymous actor when no credentials were sent."""
    header = request.headers.get("Authorization")
    if header is not None:
        user = await authenticate(request, *parse_authorization(header))
    elif URL_TOKEN in request.query:
        user = await _url_token_user(request, request.query[URL_TOKEN])
    else:
        return await _session_actor(request)
    return Actor(user.name, admin=user.admin, creator=user.creator)


async def _url_token_user(request: web.Request, text: str) -> db.User:
    """The user of an href signed for one object: no other token is taken from a URL."""
    user = await authenticate(request, None, text) if is_token(text) else None
    if user is None or request[keys.TOKEN].oid is None:
        raise Unauthorized(AUTH_FAILED)
    return user


async def _session_actor(request: web.Request) -> Actor:
    """The user of a browser session, on pages and the JSON API; git, LFS and others never."""
    family = route_family(request)
    if family not in ("web", "api"):
        return ANONYMOUS
    state = session.read(request)
    # A cookie is sent with requests that other sites start: unless the request proves it
    # came from one of our pages, it may change nothing.
    if request.method not in session.SAFE_METHODS and (family == "web" or state and state.user):
        await session.check_csrf(request, state)
    if state is None or state.user is None:
        return ANONYMOUS
    user = await db.get_user(request.app[keys.HUB].db, state.user)
    if user is None or user.disabled or key_fingerprint(user.key_hash) != state.key:
        return ANONYMOUS
    return Actor(user.name, admin=user.admin, creator=user.creator)


async def _token_user(request: web.Request, text: str) -> db.User | None:
    """The user of a valid transfer or deployment token, recording what it is good for."""
    now = request.app[keys.HUB].clock().timestamp()
    try:
        token = read_token(request.app[keys.HUB].secret, text, now)
    except InvalidToken:
        return None
    space_id, _, model_id = token.scope.partition("/")
    found = await db.user_with_model(request.app[keys.HUB].db, token.user, space_id, model_id)
    if found is None:
        return None
    user, model = found
    if key_fingerprint(user.key_hash) != token.key_fingerprint:
        return None
    if token.deployment is not None:
        deployment = await db.get_deployment(request.app[keys.HUB].db, token.deployment)
        if deployment is None or deployment.deleted_at is not None:
            return None  # a deployment's key dies with it
    request[keys.TOKEN] = token
    request[keys.TOKEN_MODEL] = model
    return user


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the Actor before any handler runs."""
    request[keys.ACTOR] = await actor_for(request)
    if keys.TOKEN in request and not token_may_use(request, request[keys.TOKEN]):
        raise Unauthorized(TOKEN_NOT_HERE)
    return await handler(request)

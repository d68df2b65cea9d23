"""Short-lived tokens for LFS actions and deployments, signed with the server's secret.

A token names a user, the model it is good for, when it expires, and a fingerprint of
the user's key: regenerating the key voids every token made with the old one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass

TOKEN_PREFIX = "amptok."


class InvalidToken(ValueError):
    """The token is forged, malformed or expired."""


@dataclass(frozen=True)
class TransferToken:
    """What a valid token grants: the user's rights on one model, or only reading it.

    A deployment's token is read-only and names the deployment, so that deleting the
    deployment revokes it. An object's token (`oid`) is good only for uploading that object:
    it is the one token that may travel in a URL, since what it lets anyone send must hash
    to the oid its owner meant to upload.
    """

    user: str
    scope: str
    key_fingerprint: str
    expires: int
    read_only: bool = False
    deployment: int | None = None
    oid: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(key_hash: str) -> str:
    """A short, non-secret tag of the user's current key."""
    return key_hash[:16]


def make_token(secret: bytes, token: TransferToken) -> str:
    """Sign a token."""
    payload = _b64(json.dumps(token.__dict__, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{TOKEN_PREFIX}{payload}.{signature}"


def read_token(secret: bytes, text: str, now: float) -> TransferToken:
    """Check a token's signature and expiry and return what it grants."""
    token = _signed_token(secret, text)
    if token.expires < now:
        raise InvalidToken("expired")
    return token


@functools.lru_cache(maxsize=1024)
def _signed_token(secret: bytes, text: str) -> TransferToken:
    """What a correctly signed token says; kept, since a push sends one token per object."""
    body = text.removeprefix(TOKEN_PREFIX)
    payload, _, signature = body.partition(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise InvalidToken("bad signature")
    try:
        token = TransferToken(**json.loads(_unb64(payload)))
    except (ValueError, TypeError):
        raise InvalidToken("malformed token") from None
    return token


def is_token(text: str) -> bool:
    """Whether a bearer value is a transfer token rather than a key."""
    return text.startswith(TOKEN_PREFIX)

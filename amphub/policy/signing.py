"""Signatures on what amphub and an inference service send each other.

The signature is HMAC-SHA256, under the deploy target's shared secret, of the Unix
timestamp, a dot and the exact body bytes. The timestamp must be recent, and the caller
remembers signatures it accepted, so a request can be neither altered nor replayed.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Amphub-Timestamp"
SIGNATURE_HEADER = "X-Amphub-Signature"
# How far a request's timestamp may be from the receiver's clock.
WINDOW_SECONDS = 300


class BadSignature(ValueError):
    """The request is not signed with the secret, is altered, or is too old."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that carry a body's signature."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def check(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    """Raise BadSignature unless the headers sign `body` under `secret`, recently."""
    if not timestamp or not signature or not timestamp.isdigit():
        raise BadSignature(f"send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise BadSignature(f"the timestamp is more than {WINDOW_SECONDS} seconds off")
    if not hmac.compare_digest(sign(secret, int(timestamp), body), signature):
        raise BadSignature("the signature does not match the body")

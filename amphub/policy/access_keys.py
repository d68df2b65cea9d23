"""Access keys: 32 random bytes shown once, kept only as their SHA-256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

KEY_PREFIX = "amp_"


def new_key() -> str:
    """A fresh key to show its owner once."""
    raw = secrets.token_bytes(32)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def hash_key(key: str) -> str:
    """What the database keeps of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def key_matches(stored_hash: str, key: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return hmac.compare_digest(stored_hash, hash_key(key))

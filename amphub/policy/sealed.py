"""Credentials amphub must use again later (peer keys, target secrets), sealed at rest.

They are encrypted with AES-GCM under a key derived from the server secret in the data
dir, so a copy of the database alone does not give away another server's key.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def _cipher(secret: bytes) -> AESGCM:
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"amphub sealed credentials").derive(secret)
    return AESGCM(key)


def seal(secret: bytes, text: str) -> bytes:
    """`text` encrypted and authenticated under the server secret."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _cipher(secret).encrypt(nonce, text.encode(), None)


def unseal(secret: bytes, sealed: bytes) -> str:
    """The text `seal` was given; raises if it was sealed under another secret or altered."""
    return _cipher(secret).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None).decode()

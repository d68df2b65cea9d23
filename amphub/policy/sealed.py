"""Credentials amphub must use again later (peer keys, target secrets), sealed at rest.

They are encrypted with AES-GCM under a key derived from the hub's signing secret. That
secret is in the database too (every node must have it), so sealing keeps a credential out
of what shows a row, an export of some tables or a log, not out of a copy of the whole
database: guard database copies as the credentials themselves.
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

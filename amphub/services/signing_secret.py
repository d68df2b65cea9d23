"""The signing secret: in the database, made once by the first node that starts.

It signs transfer tokens, sessions and CSRF tokens and seals stored credentials. A data
dir from before it moved into the database brings its `secret.key` along, so that what
was signed or sealed under it stays valid; the file is read only then.
"""

from __future__ import annotations

import secrets

from amphub import db
from amphub.services.hub import Hub

SECRET_BYTES = 32


async def load_secret(hub: Hub) -> None:
    """Set `hub.secret` from the database, storing one first if it has none."""
    stored = await db.signing_secret(hub.db)
    if stored is None:
        path = hub.config.secret_path
        offered = path.read_bytes() if path.is_file() else secrets.token_bytes(SECRET_BYTES)
        await db.offer_signing_secret(hub.db, offered.hex())
        stored = await db.signing_secret(hub.db)
        assert stored is not None  # ours, or the one another node stored first
    hub.secret = bytes.fromhex(stored)

"""The start-up probe: may clients upload straight to the object store?

Only if the store refuses every body but the one a presigned PUT's signed checksum names.
SeaweedFS, for one, refuses a mismatching body when the header is sent but takes any body
when the client leaves the header out and the gateway checks no signatures (no identities
configured): both refusals are tried, with a real PUT each, before any client is told to.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

import aiohttp

from amphub.storage.objects import ObjectStore

log = logging.getLogger("amphub")
PROBE_SECONDS = 60


async def probe_direct_uploads(store: ObjectStore) -> bool:
    """Whether the store enforces a presigned PUT's checksum; the probe object is removed."""
    data = b"amphub upload probe " + secrets.token_bytes(16)
    oid = hashlib.sha256(data).hexdigest()
    ticket = "probe-" + secrets.token_hex(8)
    presigned = await store.presign_upload(oid, len(data), ticket, PROBE_SECONDS)
    if presigned is None:
        return False
    url, headers = presigned
    other = bytes(len(data))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            unsigned = await _put(session, url, other, {})
            mismatching = await _put(session, url, other, headers)
            right = await _put(session, url, data, headers)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("uploads go through amphub: the store's presigned PUT failed: %s", exc)
        return False
    finally:
        await _remove_probe(store, oid, ticket)
    enforced = unsigned >= 400 and mismatching >= 400 and right < 300
    if enforced:
        log.info("uploads go straight to the store: it refuses bytes the checksum does not name")
    else:
        log.info(
            "uploads go through amphub: the store answered %d without the checksum header,"
            " %d to a mismatching body and %d to the right one",
            unsigned,
            mismatching,
            right,
        )
    return enforced


async def _remove_probe(store: ObjectStore, oid: str, ticket: str) -> None:
    try:
        if await store.adopt(oid, ticket) is not None:
            await store.remove(oid)
    except Exception as exc:  # noqa: BLE001 - left as scratch, removed a day later
        log.warning("the upload probe's object was not removed: %s", exc)


async def _put(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> int:
    async with session.put(url, data=body, headers=headers) as answer:
        await answer.read()
        return answer.status

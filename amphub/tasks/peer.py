"""A client of another amphub over its public protocols: the JSON API and LFS.

Sync uses nothing else, so any amphub can be the peer of any other. The peer's refusals
come back as `PeerRefused` with the peer's own sentence; a connection that fails or
times out is `PeerUnreachable`, which the caller may retry.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from amphub.http.errors import LFS_MEDIA_TYPE

READ_PIECE = 1024 * 1024
BATCH_OBJECTS = 100
# A peer may take a while to answer a batch or finish an fsync, never this long.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)
RETRIED_STATUSES = (500, 502, 503, 504)
# Checking whether a peer answers is done while someone waits for a list.
CHECK_TIMEOUT = aiohttp.ClientTimeout(total=3)


class PeerRefused(Exception):
    """The peer answered and said no; the message is the peer's."""


class PeerUnreachable(Exception):
    """The peer could not be reached or stopped answering; trying again may work."""


def peer_message(status: int, text: str) -> str:
    """The sentence in a peer's error answer (API or LFS shape), or the raw start of it."""
    try:
        body = json.loads(text)
    except ValueError:
        return f"HTTP {status}: {text.strip()[:300]}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return f"HTTP {status}: {text.strip()[:300]}"


def _connect_failure(error: OSError) -> str:
    """Why a connection failed, in a few words (the system's own where it has some)."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"cannot connect: {error.strerror or error}"


class Peer:
    """One session with a peer amphub as one of its users."""

    def __init__(self, url: str, user: str, key: str) -> None:
        self.url = url.rstrip("/")
        self._auth = {"Authorization": aiohttp.encode_basic_auth(user, key)}
        self._session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)

    async def close(self) -> None:
        """End the session."""
        await self._session.close()

    async def _request(
        self, method: str, url: str, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[int, Any]:
        """(status, JSON body) of a call whose status is in `ok`; PeerRefused otherwise."""
        try:
            async with self._session.request(method, url, **kwargs) as resp:
                text = await resp.text()
                if resp.status in ok:
                    return resp.status, json.loads(text) if text.strip() else None
                if resp.status in RETRIED_STATUSES:
                    raise PeerUnreachable(f"the peer answered {resp.status}")
                raise PeerRefused(peer_message(resp.status, text))
        except TimeoutError:
            raise PeerUnreachable("it did not answer in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise PeerUnreachable(_connect_failure(exc.os_error)) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise PeerUnreachable(f"{type(exc).__name__}: {exc}") from None

    async def _api(
        self, method: str, path: str, ok: tuple[int, ...], body: Any = None
    ) -> tuple[int, Any]:
        return await self._request(method, self.url + path, ok, headers=self._auth, json=body)

    async def check(self) -> str | None:
        """None if the peer answers as our user within CHECK_TIMEOUT; otherwise why not."""
        try:
            url = f"{self.url}/api/v1/me"
            await self._request("GET", url, (200,), headers=self._auth, timeout=CHECK_TIMEOUT)
        except PeerRefused as exc:
            return f"refused: {exc}"
        except PeerUnreachable as exc:
            return str(exc)
        return None

    async def ensure_space(self, space: dict[str, Any]) -> None:
        """Create the space on the peer unless it is there already."""
        await self._ensure(f"/api/v1/spaces/{space['id']}", "/api/v1/spaces", space)

    async def ensure_model(self, space_id: str, model: dict[str, Any]) -> None:
        """Create the model on the peer unless it is there already."""
        path = f"/api/v1/models/{space_id}/{model['id']}"
        await self._ensure(path, f"/api/v1/spaces/{space_id}/models", model)

    async def _ensure(self, path: str, collection: str, body: dict[str, Any]) -> None:
        """Create what `path` names by a POST to `collection`, unless it is there.

        A 409 may mean that another sync made it meanwhile; if it is still not there for
        this key, the id is taken by one the key may not see, as the peer's sentence says.
        """
        status, _ = await self._api("GET", path, (200, 404))
        if status == 200:
            return
        status, answer = await self._api("POST", collection, (201, 409), body)
        if status == 409 and (await self._api("GET", path, (200, 404)))[0] == 404:
            raise PeerRefused(peer_message(status, json.dumps(answer)))

    async def missing_objects(
        self, repo: str, ref: str, objects: list[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        """The batch API's upload answer for each object the peer still needs."""
        needed = []
        for start in range(0, len(objects), BATCH_OBJECTS):
            chunk = objects[start : start + BATCH_OBJECTS]
            body = {
                "operation": "upload",
                "transfers": ["basic"],
                "ref": {"name": ref},
                "hash_algo": "sha256",
                "objects": [{"oid": oid, "size": size} for oid, size in chunk],
            }
            _, answer = await self._request(
                "POST",
                f"{self.url}/{repo}.git/info/lfs/objects/batch",
                (200,),
                data=json.dumps(body),
                headers={**self._auth, "Content-Type": LFS_MEDIA_TYPE, "Accept": LFS_MEDIA_TYPE},
            )
            for item in answer.get("objects", []):
                if "error" in item:
                    raise PeerRefused(f"{item['oid']}: {item['error'].get('message', '')}")
                if "upload" in item.get("actions", {}):
                    needed.append(item)
        return needed

    async def upload(
        self,
        item: dict[str, Any],
        content: AsyncIterator[bytes],
        sent: Callable[[int], Awaitable[None]],
    ) -> None:
        """Send one object as the batch answer says, then verify it if asked to."""
        action = item["actions"]["upload"]
        headers = {
            **action.get("header", {}),
            "Content-Type": "application/octet-stream",
            "Content-Length": str(item["size"]),
        }
        await self._request(
            "PUT", action["href"], (200, 201), data=_reported(content, sent), headers=headers
        )
        verify = item["actions"].get("verify")
        if verify:
            await self._request(
                "POST",
                verify["href"],
                (200,),
                data=json.dumps({"oid": item["oid"], "size": item["size"]}),
                headers={**verify.get("header", {}), "Content-Type": LFS_MEDIA_TYPE},
            )


async def _reported(
    content: AsyncIterator[bytes], sent: Callable[[int], Awaitable[None]]
) -> AsyncIterator[bytes]:
    """An object's bytes as the store reads them, reporting each piece sent."""
    async for piece in content:
        yield piece
        await sent(len(piece))

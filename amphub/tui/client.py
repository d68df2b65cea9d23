"""The console's only way to the server: the JSON API over HTTP, with an administrator's key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

API = "/api/v1"
# A lost server is noticed within seconds; a slow answer on a busy host is still waited for.
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5)
# The key of a peer list in its answer, where it is not the path's own name.
LISTED_AS = {"deploy-targets": "targets"}


class RequestRefused(Exception):
    """The server answered with an error: its code and its sentence for a person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ServerUnreachable(Exception):
    """No answer from the server: it is down, restarting, or the network is."""


@dataclass(frozen=True)
class Page:
    """One page of a long list and how many items the whole list holds."""

    items: list[dict]
    total: int


def _segment(value: str) -> str:
    # Ids are ASCII without '/', but a typed name may hold anything: keep it one segment.
    return quote(value, safe="")


class ApiClient:
    """Calls to the amphub JSON API; each method is one route of API.md."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self.use_key(key)

    def use_key(self, key: str) -> None:
        """Send `key` from the next call on."""
        self._headers = {"Authorization": f"Bearer {key}"}

    async def close(self) -> None:
        """Close the connections; the client opens new ones if it is used again."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        text: bool = False,
    ) -> Any:
        """One request; the decoded answer, `{}` for an empty one; with `text`, the text.

        Raises:
            RequestRefused: the server answered with an error.
            ServerUnreachable: the server did not answer.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            async with self._session.request(
                method, self.url + API + path, json=json, params=params, headers=self._headers
            ) as response:
                if text and response.status < 400:
                    return (await response.read()).decode("utf-8", errors="replace")
                return await _answer(response)
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise ServerUnreachable(str(exc) or type(exc).__name__) from None

    async def me(self) -> dict:
        """The user the key belongs to."""
        return await self.call("GET", "/me")

    async def users(self, page: int, per_page: int, text: str = "") -> Page:
        """A page of users by name, those with `text` in their name."""
        answer = await self.call(
            "GET", "/users", params={"page": page, "per_page": per_page, "q": text}
        )
        return Page(answer["users"], answer["total"])

    async def create_user(self, name: str, *, admin: bool, creator: bool) -> dict:
        """A new user, with its key in `key`."""
        body = {"name": name, "admin": admin, "creator": creator}
        return await self.call("POST", "/users", json=body)

    async def change_user(self, name: str, **flags: bool) -> dict:
        """Set `admin`, `creator` or `disabled`; the changed user."""
        return await self.call("PATCH", f"/users/{_segment(name)}", json=flags)

    async def regenerate_key(self, name: str) -> str:
        """A new key for the user; the old one stops working."""
        return (await self.call("POST", f"/users/{_segment(name)}/key"))["key"]

    async def spaces(self, page: int, per_page: int, text: str = "") -> tuple[Page, int]:
        """A page of spaces by id, and the quota unit in bytes."""
        answer = await self.call(
            "GET", "/spaces", params={"page": page, "per_page": per_page, "q": text}
        )
        return Page(answer["spaces"], answer["total"]), answer["quota_unit"]

    async def space(self, space: str) -> dict:
        """One space."""
        return await self.call("GET", f"/spaces/{_segment(space)}")

    async def create_space(self, body: dict) -> dict:
        """A new space from `{"name", "id"?, "quota", "billing_mode", "period"?}`."""
        return await self.call("POST", "/spaces", json=body)

    async def set_quota(self, space: str, quota: int) -> dict:
        """The space with its new quota."""
        return await self.call("POST", f"/spaces/{_segment(space)}/quota", json={"quota": quota})

    async def renew(self, space: str, period: int) -> dict:
        """The space with its new expiration."""
        return await self.call("POST", f"/spaces/{_segment(space)}/renew", json={"period": period})

    async def unsubscribe(self, space: str, confirm: str) -> dict:
        """Release the space; `confirm` must be its id."""
        path = f"/spaces/{_segment(space)}/unsubscribe"
        return await self.call("POST", path, json={"confirm": confirm})

    async def members(self, scope: str) -> list[dict]:
        """The members of `spaces/ID` or `models/SPACE/ID`, owner first."""
        return (await self.call("GET", f"/{scope}/members"))["members"]

    async def set_member(self, scope: str, user: str, role: str) -> dict:
        """Grant or change a member's role."""
        path = f"/{scope}/members/{_segment(user)}"
        return await self.call("PUT", path, json={"role": role})

    async def remove_member(self, scope: str, user: str) -> dict:
        """Revoke a member's role."""
        return await self.call("DELETE", f"/{scope}/members/{_segment(user)}")

    async def models(self, page: int, per_page: int, filters: dict[str, str]) -> Page:
        """A page of the model search, newest first, with its filters."""
        params = {"page": page, "per_page": per_page, **filters}
        answer = await self.call("GET", "/models", params=params)
        return Page(answer["models"], answer["total"])

    async def model(self, space: str, model: str) -> dict:
        """One model with its card, size, last scan, replicas and deployments."""
        return await self.call("GET", f"/models/{_segment(space)}/{_segment(model)}")

    async def refs(self, space: str, model: str) -> dict:
        """A model's branches and tags."""
        return await self.call("GET", f"/models/{_segment(space)}/{_segment(model)}/refs")

    async def readme(self, space: str, model: str, ref: str) -> str:
        """The README.md at `ref`; empty if there is none."""
        path = f"/models/{_segment(space)}/{_segment(model)}/blob/{_segment(ref)}/README.md"
        try:
            return await self.call("GET", path, text=True)
        except RequestRefused as exc:
            if exc.status == 404:
                return ""
            raise

    async def change_model(self, space: str, model: str, **fields: str) -> dict:
        """Rename a model or change its visibility."""
        path = f"/models/{_segment(space)}/{_segment(model)}"
        return await self.call("PATCH", path, json=fields)

    async def start_task(self, space: str, model: str, kind: str, body: dict) -> dict:
        """Queue a scan, sync or deploy (`kind` is `scans`, `syncs` or `deployments`)."""
        path = f"/models/{_segment(space)}/{_segment(model)}/{kind}"
        return await self.call("POST", path, json=body)

    async def tasks(self, kind: str = "", status: str = "") -> list[dict]:
        """The newest tasks, filtered by kind and status."""
        answer = await self.call("GET", "/tasks", params={"kind": kind, "status": status})
        return answer["tasks"]

    async def task(self, task_id: int) -> dict:
        """One task with its result."""
        return await self.call("GET", f"/tasks/{task_id:d}")

    async def cancel_task(self, task_id: int) -> dict:
        """Cancel a queued task, or ask a running one to stop."""
        return await self.call("POST", f"/tasks/{task_id:d}/cancel")

    async def peers(self, kind: str, *, check: bool = True) -> list[dict]:
        """Every zone (`zones`), deploy target (`deploy-targets`) or upstream (`upstreams`).

        Without `check`, zones are listed without asking each whether it answers.
        """
        answer = await self.call("GET", f"/{kind}" if check else f"/{kind}?check=0")
        return answer[LISTED_AS.get(kind, kind)]

    async def add_peer(self, kind: str, body: dict) -> dict:
        """Register a zone, a deploy target or an upstream."""
        return await self.call("POST", f"/{kind}", json=body)

    async def remove_peer(self, kind: str, name: str) -> dict:
        """Forget a zone, a deploy target or an upstream."""
        return await self.call("DELETE", f"/{kind}/{_segment(name)}")

    async def start_mirror(self, upstream: str, body: dict) -> dict:
        """Queue the mirror of `{"repo", "revision"?, "refresh_hours"?}`; the task."""
        return await self.call("POST", f"/upstreams/{_segment(upstream)}/mirrors", json=body)


async def _answer(response: aiohttp.ClientResponse) -> Any:
    """The JSON of a good answer; RequestRefused with the server's sentence otherwise."""
    body = await response.read()
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        value = None
    if response.status < 400:
        if value is None:
            raise RequestRefused(response.status, "", "the server's answer is not JSON")
        return value
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict) and "message" in error:
        raise RequestRefused(response.status, str(error.get("code", "")), str(error["message"]))
    raise RequestRefused(response.status, "", f"HTTP {response.status} {response.reason or ''}")

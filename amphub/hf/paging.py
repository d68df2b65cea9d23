"""Query parameters as the Hub reads them, and paging: `?cursor=` and a Link header.

huggingface_hub follows `rel="next"` until there is none, so a client never sees the
cursor; here it is the number of items before the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from amphub.errors import BadRequest
from amphub.http.urls import base_url


def flag(request: web.Request, name: str) -> bool:
    """Whether a true/false query parameter is set (the client sends `true` or `1`)."""
    return request.query.get(name, "").lower() in ("1", "true")


@dataclass(frozen=True)
class Page:
    """Which items a request asks for: `limit` of them after the first `offset`."""

    offset: int
    limit: int


def requested_page(request: web.Request, default: int, maximum: int) -> Page:
    """The page of `?cursor=&limit=`; `limit` is capped at `maximum`."""
    try:
        offset = int(request.query.get("cursor", "0"))
        limit = int(request.query.get("limit", str(default)))
    except ValueError:
        raise BadRequest("cursor and limit must be whole numbers") from None
    if offset < 0 or limit < 1:
        raise BadRequest("cursor must not be negative and limit must be positive")
    return Page(offset, min(limit, maximum))


def paged_response(
    request: web.Request,
    items: list[Any],
    page: Page,
    more: bool,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The page's items as a JSON list, with a Link to the next page when there is `more`."""
    headers = dict(headers or {})
    if more:
        following = request.rel_url.update_query(cursor=str(page.offset + page.limit))
        headers["Link"] = f'<{base_url(request)}{following}>; rel="next"'
    return web.json_response(items, headers=headers)

"""Optional paging of a list answer: `?page=&per_page=`, and a name filter `?q=`."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from amphub.errors import BadRequest

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50


@dataclass(frozen=True)
class PageRequest:
    """One page of a list: which page (from 1) and how many items each page holds."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        """How many items come before this page."""
        return (self.page - 1) * self.per_page


def requested_page(request: web.Request) -> PageRequest | None:
    """The page asked for, or None when the caller asked for the whole list.

    Lists answered whole before paging existed stay whole unless `page` or `per_page`
    is given, so older callers keep working.
    """
    query = request.query
    if "page" not in query and "per_page" not in query:
        return None
    try:
        page = int(query.get("page", "1"))
        per_page = int(query.get("per_page", str(DEFAULT_PER_PAGE)))
    except ValueError:
        raise BadRequest("page and per_page must be whole numbers") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequest(f"page starts at 1; per_page is 1 to {MAX_PER_PAGE}")
    return PageRequest(page, per_page)


def name_filter(request: web.Request) -> str:
    """The `q` filter, lowercased: a substring of the names to keep."""
    return request.query.get("q", "").strip().lower()

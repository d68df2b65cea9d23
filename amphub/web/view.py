"""The page templates, their filters, and the one function that answers with a page."""

from __future__ import annotations

import functools
import hashlib
import math
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Environment, PackageLoader

from amphub.clock import parse_rfc3339
from amphub.http import keys, session
from amphub.http.access import actor
from amphub.http.headers import PAGE_HEADERS, STATIC_PREFIX
from amphub.policy import Actor
from amphub.units import human_size

COUNT_UNITS = ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K"))
# What a permission lets a person do, strongest first, as the cards and headers say it.
PERMISSION_LABELS = (
    ("delete", "Manage"),
    ("edit", "Edit"),
    ("write_files", "Write"),
    ("read_files", "Read"),
    ("view", "View"),
)


def page_size(size: int | None) -> str:
    """A size on a page; nothing where there is none."""
    return "" if size is None else human_size(size)


def human_count(number: int | None) -> str:
    """A large count in short form: 1.7B, 125M, 350K."""
    if number is None:
        return ""
    for scale, unit in COUNT_UNITS:
        if abs(number) >= scale:
            return f"{number / scale:.3g}{unit}"
    return str(number)


def metric(value: float) -> str:
    """A performance number without float noise."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def when(moment: str | None) -> str:
    """An API time as a person reads it (UTC)."""
    if not moment:
        return ""
    return parse_rfc3339(moment).strftime("%Y-%m-%d %H:%M")


def short_date(moment: str | None) -> str:
    """An API time as a date."""
    return parse_rfc3339(moment).strftime("%Y-%m-%d") if moment else ""


def web_url(url: str | None) -> str:
    """An address fit for a link on a page: http or https only, else nothing."""
    return url if url and url.lower().startswith(("https://", "http://")) else ""


def permission_label(permissions: list[str]) -> str:
    """The strongest thing the caller may do with a model."""
    return next((label for name, label in PERMISSION_LABELS if name in permissions), "")


def percent(part: int, whole: int) -> int:
    """`part` of `whole` in whole percent, for a bar."""
    return min(100, math.ceil(100 * part / whole)) if whole else 0


@functools.cache
def _static_versions() -> dict[str, str]:
    folder = resources.files("amphub.web") / "static"
    return {
        item.name: hashlib.sha256(item.read_bytes()).hexdigest()[:12]
        for item in folder.iterdir()
        if item.is_file()
    }


def static(name: str) -> str:
    """A static file's address, versioned by its content so browsers may cache it."""
    return f"{STATIC_PREFIX}/{name}?v={_static_versions()[name]}"


@functools.cache
def environment() -> Environment:
    """The templates, HTML-escaped by default."""
    env = Environment(
        loader=PackageLoader("amphub.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=page_size,
        count=human_count,
        metric=metric,
        when=when,
        date=short_date,
        permission=permission_label,
        web_url=web_url,
    )
    env.globals.update(static=static, percent=percent)
    return env


def link(request: web.Request, path: str | None = None, **changes: Any) -> str:
    """This page's address (or `path`) with query values changed; None removes one."""
    query = {k: v for k, v in request.query.items() if k not in changes}
    query.update({k: v for k, v in changes.items() if v not in (None, "")})
    text = urlencode(query)
    return (path or request.path) + (f"?{text}" if text else "")


def page(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    who: Actor | None = None,
    **context: Any,
) -> web.Response:
    """A page for the caller (`who`, when not signed in yet), with the security headers."""
    kept = session.read(request)
    state = kept or session.new(request)
    text = (
        environment()
        .get_template(template)
        .render(
            who=who or actor(request),
            csrf=session.csrf_token(request, state),
            here=request.path_qs,
            link=functools.partial(link, request),
            **context,
        )
    )
    response = web.Response(
        text=text, content_type="text/html", status=status, headers=PAGE_HEADERS
    )
    if kept is None:
        session.store(request, response, state)
    return response


# What a page says for aiohttp's own one-word reasons.
GENERIC_MESSAGES = {
    "Not Found": "There is no page at this address.",
    "Method Not Allowed": "This page cannot be used that way.",
}


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """An error as a page of the site: its header, navigation and search around the message."""
    title = f"{status} {HTTPStatus(status).phrase}"
    text = GENERIC_MESSAGES.get(message, message)
    who = request.get(keys.ACTOR) or Actor()  # none when signing in itself failed
    return page(request, "error.html", status=status, who=who, title=title, message=text)


def redirect(location: str) -> web.Response:
    """See Other: after a form, or to the address a page really has."""
    return web.Response(status=303, headers={**PAGE_HEADERS, "Location": location})

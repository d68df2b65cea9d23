"""Reading JSON request bodies and their fields, with errors that name the field."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, TypeVar, overload

from aiohttp import web

from amphub.errors import BadRequest, PayloadTooLarge

T = TypeVar("T")
D = TypeVar("D")
MAX_JSON_BODY = 1024 * 1024
_MISSING = object()


class BodyTooLong(Exception):
    """The body went past the number of bytes the route accepts."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, read in the pieces it arrives in; BodyTooLong past `limit` bytes."""
    if request.content_length and request.content_length > limit:
        raise BodyTooLong
    parts, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLong
        parts.append(chunk)
    return b"".join(parts)


def parse_json(raw: bytes | str, refusal: str) -> Any:
    """JSON a client sent; BadRequest(refusal) if it is not JSON or is nested too deeply.

    Python's decoder recurses once per nested array or object: `[[[[…` of a few hundred
    kilobytes would otherwise end in a RecursionError.
    """
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"{refusal}: {exc}") from None


async def json_object(
    request: web.Request, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """The request body as a JSON object; an empty body counts as `{}`.

    With `fields`, a name outside them is refused: a misspelled optional field would
    otherwise be ignored, and its default used without a word.
    """
    try:
        raw = await read_body(request, MAX_JSON_BODY)
    except BodyTooLong:
        raise PayloadTooLarge(f"a JSON body may be at most {MAX_JSON_BODY} bytes") from None
    if not raw.strip():
        return {}
    value = parse_json(raw, "the body is not valid JSON")
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(value) - set(fields)) if fields is not None else []
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r}; the fields here are {', '.join(sorted(fields or ()))}"
        )
    return value


@overload
def field(body: dict[str, Any], name: str, kind: type[T]) -> T: ...


@overload
def field(body: dict[str, Any], name: str, kind: type[T], default: D) -> T | D: ...


def field(body: dict[str, Any], name: str, kind: type[T], default: Any = _MISSING) -> Any:
    """`body[name]` if it has the right type; the default when absent; else BadRequest."""
    if name not in body or body[name] is None:
        if default is _MISSING:
            raise BadRequest(f"missing field {name!r}")
        return default
    value = body[name]
    # bool is an int in Python, but not in JSON.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequest(f"field {name!r} must be {kind.__name__}")
    return value

"""The addresses amphub hands out."""

from __future__ import annotations

from aiohttp import web

from amphub import keys


def base_url(request: web.Request) -> str:
    """The configured base URL, or the address the request came to."""
    return request.app[keys.CONFIG].base_url or f"{request.scheme}://{request.host}"


def model_url(request: web.Request, space_id: str, model_id: str) -> str:
    """The clone URL of a model."""
    return f"{base_url(request)}/{space_id}/{model_id}.git"

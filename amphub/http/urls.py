"""The addresses amphub hands out."""

from __future__ import annotations

from aiohttp import web

from amphub.http import keys
from amphub.policy.names import check_model_id, check_space_id


def base_url(request: web.Request) -> str:
    """The configured base URL, or the address the request came to."""
    return request.app[keys.HUB].config.base_url or f"{request.scheme}://{request.host}"


def model_url(request: web.Request, space_id: str, model_id: str) -> str:
    """The clone URL of a model."""
    return f"{base_url(request)}/{space_id}/{model_id}.git"


def model_ids(request: web.Request) -> tuple[str, str]:
    """The space and model ids of a git URL, with the optional `.git` suffix removed."""
    space_id = check_space_id(request.match_info["space"])
    model_id = request.match_info["model"].removesuffix(".git")
    return space_id, check_model_id(model_id)

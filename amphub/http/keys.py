"""The typed keys under which the application and requests keep their state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from amphub.db import ModelWithRoles
from amphub.policy import Actor
from amphub.policy.tokens import TransferToken
from amphub.services.hub import Hub

HUB = web.AppKey("hub", Hub)
# The error page in the site's layout (status, message), set by the pages' adapter.
ERROR_PAGE = web.AppKey[Callable[[web.Request, int, str], web.Response]]("error_page")

ACTOR = web.RequestKey("actor", Actor)
# Set when the request carried a transfer or deployment token instead of a key.
TOKEN = web.RequestKey("token", TransferToken)
# The model a token is good for, with the caller's roles (None if it does not exist), read
# with the token's user: requests that carry a token ask about that model only.
TOKEN_MODEL = web.RequestKey[ModelWithRoles | None]("token_model")
# The (repository, revision, commit id) a mirrored model's scan gate let out: the handler
# serves that very commit, not one a refresh has moved the branch to since.
GATED_COMMIT = web.RequestKey[tuple[Path, str, str]]("gated_commit")

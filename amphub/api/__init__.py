"""The JSON API under /api/v1/."""

from aiohttp import web

from amphub.api import (
    audit,
    deployments,
    files,
    models,
    openapi,
    peers,
    spaces,
    tasks,
    upstreams,
    users,
)


def add_routes(app: web.Application) -> None:
    """Every API route."""
    users.add_routes(app)
    spaces.add_routes(app)
    models.add_routes(app)
    audit.add_routes(app)
    files.add_routes(app)
    tasks.add_routes(app)
    peers.add_routes(app)
    deployments.add_routes(app)
    openapi.add_routes(app)
    upstreams.add_routes(app)

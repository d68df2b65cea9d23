"""Upstream hubs for administrators: add, remove, and mirror their repos."""

from __future__ import annotations

from aiohttp import web

from amphub.api import upstreams as upstreams_api
from amphub.http import keys
from amphub.http.access import actor
from amphub.policy.matrix import VISIBILITIES
from amphub.services.spaces import usable_spaces
from amphub.web.view import page


async def get_upstreams_page(request: web.Request) -> web.Response:
    """Every upstream with the repos mirrored from it, and the forms that change them."""
    found = await upstreams_api.upstreams_answer(request)
    hub = request.app[keys.HUB]
    for upstream in found["upstreams"]:
        upstream["mirrors"] = await upstreams_api.mirrors_json(hub, upstream["name"])
    spaces = await usable_spaces(hub, actor(request))
    return page(
        request,
        "upstreams.html",
        upstreams=found["upstreams"],
        space_ids=[space.id for space in spaces],
        visibilities=VISIBILITIES,
    )

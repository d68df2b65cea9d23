"""What a transfer or deploy token may be used for: one allow-list of routes, in one place.

A token stands for its user on its own model only, for moving that model's content: git's
fetch, the LFS API, Xet's storage calls and the Hugging Face download routes. Any other
route treats a request that carries one as if it carried no credentials. A token signed for
one object is good only for uploading that object. Which model the
token is good for is checked by the permission check (`amphub.http.access`).
"""

from __future__ import annotations

import re

from aiohttp import web

from amphub.policy.tokens import TransferToken

# The route patterns (as aiohttp writes them, `{space}` and `{model}` first) a token may use.
_MODEL = r"/\{space\}/\{model\}"
_HF_MODEL = r"/api/models/\{space\}/\{model\}"
ALLOWED = re.compile(
    "|".join(
        (
            _MODEL + r"/info/refs",
            _MODEL + r"/\{service\}",
            _MODEL + r"/info/lfs(/.*)?",
            _MODEL + r"/resolve/.*",
            _HF_MODEL,
            _HF_MODEL + r"/(revision|tree|paths-info|refs|commits)(/.*)?",
            _HF_MODEL + r"/xet/.*",
        )
    )
)
OBJECT_UPLOAD = _MODEL + r"/info/lfs/objects/\{oid\}"
# Git's services a token may ask for: fetching only, never a push.
GIT_SERVICES = frozenset({"git-upload-pack"})


def token_may_use(request: web.Request, token: TransferToken) -> bool:
    """Whether a request carrying this token goes to a route the token is good for."""
    if request.match_info.http_exception is not None:
        return True  # no such route: it answers 404 or 405 to anyone (Xet probes for some)
    route = request.match_info.route
    pattern = route.resource.canonical if route.resource is not None else ""
    if token.oid is not None:
        return (
            request.method == "PUT"
            and re.fullmatch(OBJECT_UPLOAD, pattern) is not None
            and request.match_info["oid"] == token.oid
        )
    if not ALLOWED.fullmatch(pattern):
        return False
    service = request.match_info.get("service") or request.query.get("service")
    return service is None or service in GIT_SERVICES

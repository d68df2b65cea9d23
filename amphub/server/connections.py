"""How amphub is served: connection limits per address and in all, and a header timeout.

aiohttp accepts every connection and waits for request headers as long as a client likes:
thousands of half-sent requests then take every file descriptor, and the server can
accept nobody else. The runner here closes a connection past the limits as soon as it is
accepted, and gives aiohttp's keep-alive timer the header timeout, which closes a
connection that has no whole request in that time after it opened or was last answered.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from amphub.config import Config
from amphub.http.keys import HUB
from amphub.server.logs import quiet_repeated_lines

log = logging.getLogger("amphub")

# Descriptors kept for everything that is not a client connection: the database, the
# repository and object files being read and written, the scan processes' pipes.
RESERVED_FILES = 256


def connection_bound(config: Config) -> int:
    """How many connections may be open at once, below the open-file limit.

    The soft limit is raised toward the hard one when it is too low for the setting.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = config.max_connections + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft == resource.RLIM_INFINITY:
        return config.max_connections
    bound = max(1, min(config.max_connections, soft - RESERVED_FILES))
    if bound < config.max_connections:
        log.warning("open-file limit %d: at most %d connections at once", soft, bound)
    return bound


def peer_address(transport: asyncio.BaseTransport) -> str:
    """The client's address; there is no trusted proxy, so it is the socket's peer."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class GuardedServer(web.Server):
    """aiohttp's protocol factory, closing connections past the limits when they open."""

    def __init__(self, plain: web.Server, per_address: int, total: int) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            # The keyword arguments aiohttp gives each connection's RequestHandler.
            **plain._kwargs,
        )
        self.per_address = per_address
        self.total = total
        self.open_from: Counter[str] = Counter()
        self.peers: dict[RequestHandler, str] = {}

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        """Count the connection; close it at once when it is one too many."""
        super().connection_made(handler, transport)
        address = peer_address(transport)
        self.peers[handler] = address
        self.open_from[address] += 1
        if self.open_from[address] > self.per_address or len(self.peers) > self.total:
            transport.abort()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        """Count the connection out."""
        super().connection_lost(handler, exc)
        address = self.peers.pop(handler, None)
        if address is not None:
            self.open_from[address] -= 1
            if not self.open_from[address]:
                del self.open_from[address]


class HubRunner(web.AppRunner):
    """An AppRunner for amphub's app, serving it within the limits of its settings."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        config = app[HUB].config
        super().__init__(app, keepalive_timeout=config.header_timeout, **kwargs)

    async def _make_server(self) -> web.Server:
        quiet_repeated_lines()
        config = self.app[HUB].config
        plain = await super()._make_server()
        return GuardedServer(plain, config.connections_per_address, connection_bound(config))

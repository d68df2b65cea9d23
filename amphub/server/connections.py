"""How amphub is served: connection limits, a header timeout, access lines, a graceful stop.

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
from amphub.server.logs import ACCESS_LOGGER, AccessLogger, quiet_repeated_lines

log = logging.getLogger("amphub")

# Descriptors kept for everything that is not a client connection: the database, the
# repository and object files being read and written, the scan processes' pipes.
RESERVED_FILES = 256
# How often a stopping server looks whether the requests under way have ended.
SHUTDOWN_POLL_SECONDS = 0.05


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
        self.hurried = asyncio.Event()  # set: a stop under way waits for nothing more

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

    def pre_shutdown(self) -> None:
        """At a stop, close the idle connections; the busy ones go in `shutdown`."""
        for handler in self._busy(False):
            handler.close()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Give the requests under way `timeout` seconds to end, still reading their bodies.

        aiohttp's own shutdown first marks every connection closed, and a closed connection
        drops what arrives (aio-libs/aiohttp#2298): a push or upload whose body was still
        coming would wait for it until cut. Here each busy connection is closed only once
        its answer is sent; what is still running at the deadline is cancelled by aiohttp.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (60.0 if timeout is None else timeout)
        busy = set(self._busy(True))
        while busy and loop.time() < deadline and not self.hurried.is_set():
            for handler in busy - set(self._busy(True)):
                handler.close()
                busy.discard(handler)
            await asyncio.sleep(SHUTDOWN_POLL_SECONDS)
        if self.hurried.is_set():
            deadline = loop.time()
        # aiohttp takes a timeout of 0 for none at all: a moment is the least it is given.
        await super().shutdown(max(SHUTDOWN_POLL_SECONDS, deadline - loop.time()))

    def _busy(self, busy: bool) -> list[RequestHandler]:
        """The connections with (or without) a request under way."""
        return [h for h in self._connections if h._request_in_progress == busy]


class HubRunner(web.AppRunner):
    """An AppRunner for amphub's app, serving it within the limits of its settings."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        config = app[HUB].config
        kwargs.setdefault("access_log", logging.getLogger(ACCESS_LOGGER))
        super().__init__(
            app,
            keepalive_timeout=config.header_timeout,
            # How long a stop waits for the requests under way (aiohttp then cancels them).
            shutdown_timeout=config.shutdown_timeout,
            access_log_class=AccessLogger,
            **kwargs,
        )

    async def _make_server(self) -> web.Server:
        quiet_repeated_lines()
        config = self.app[HUB].config
        plain = await super()._make_server()
        return GuardedServer(plain, config.connections_per_address, connection_bound(config))

"""Clients that send slowly, or not at all, cannot stall the server for everyone else.

Raw sockets on loopback against the real server, with small limits in its settings. The
waits below are hang guards: on a server without the limits they run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dulwich.protocol import pkt_line

from amphub.git.bridge import SLOW_READER_SECONDS
from amphub.services.hub import BLOCKING_THREADS

from .conftest import Hub, git, push, running_hub

GUARD = 10  # seconds: longer than any limit set here, far shorter than the defaults

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def connections(hub: Hub, count: int) -> AsyncIterator[list[Connection]]:
    """`count` open connections to the server, closed after."""
    port = hub.server.port
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    try:
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


def request_head(method: str, path: str, length: int, ctype: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection (within the guard)."""
    received = b""
    async with asyncio.timeout(GUARD):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def test_slow_fetch_bodies_leave_git_working_for_others(tmp_path: Path):
    """More slow upload-pack requests than git threads; another model's ls-remote answers."""
    async with running_hub(tmp_path / "data") as hub:
        await hub.space_and_model("team", "open", visibility="public")
        await hub.model("team", "other")
        head = request_head(
            "POST",
            "/team/open.git/git-upload-pack",
            1_000_000,
            "application/x-git-upload-pack-request",
        )
        async with connections(hub, BLOCKING_THREADS + 8) as slow:
            for _, writer in slow:
                writer.write(head + b"0")
            await asyncio.sleep(0.5)  # every request has reached its handler
            async with asyncio.timeout(GUARD):
                listed = await git("ls-remote", hub.remote("team", "other"))
        assert "refs/heads/master" in listed.stdout


@pytest.mark.parametrize(
    ("path", "ctype", "answer"),
    [
        ("/api/v1/spaces", "application/json", b'"code": "request_timeout"'),
        ("/team/open.git/git-upload-pack", "application/x-git-upload-pack-request", b"slower"),
    ],
)
async def test_body_slower_than_the_minimum_rate_is_cut(
    tmp_path: Path, path: str, ctype: str, answer: bytes
):
    settings = {"min_body_rate": 100, "body_rate_window": 1}
    async with running_hub(tmp_path / "data", **settings) as hub:
        await hub.space_and_model("team", "open", visibility="public")
        async with connections(hub, 1) as [(reader, writer)]:
            auth = f"Authorization: Bearer {hub.admin_key}\r\n".encode()
            writer.write(
                request_head("POST", path, 10_000, ctype).replace(
                    b"\r\n\r\n", b"\r\n" + auth + b"\r\n"
                )
            )

            async def trickle() -> None:
                with contextlib.suppress(ConnectionError):
                    for _ in range(10_000):
                        writer.write(b" ")
                        await writer.drain()
                        await asyncio.sleep(0.1)

            sender = asyncio.create_task(trickle())
            try:
                received = await closed_by_server(reader)
            finally:
                sender.cancel()
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert answer in received


async def test_connection_without_whole_headers_is_closed(tmp_path: Path):
    async with running_hub(tmp_path / "data", header_timeout=1) as hub:
        async with connections(hub, 2) as [(silent, _), (half, half_writer)]:
            half_writer.write(b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert await closed_by_server(silent) == b""
            assert await closed_by_server(half) == b""
        # A whole request is answered as usual.
        status, _ = await hub.call("GET", "/api/v1/me")
        assert status == 200


@pytest.mark.parametrize(
    "settings",
    [{"connections_per_address": 3}, {"max_connections": 3}],
    ids=["per-address", "in-all"],
)
async def test_connections_past_the_limit_are_closed(tmp_path: Path, settings: dict):
    async with running_hub(tmp_path / "data", **settings) as hub:
        await hub.session.close()  # its pooled connections would count
        async with connections(hub, 4) as opened:
            (*kept, (extra, _)) = opened
            assert await closed_by_server(extra) == b""
            reader, writer = kept[0]
            writer.write(b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 ")
        # The closed ones are counted out: new connections are served.
        async with connections(hub, 3) as again:
            reader, writer = again[2]
            writer.write(b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 ")


async def test_a_flood_of_accept_errors_writes_a_few_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """asyncio logs each failed accept; 20,000 of them write a bounded number of lines."""
    async with running_hub(tmp_path / "data"):
        loop = asyncio.get_running_loop()
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(20_000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert 1 <= len(lines) <= 10


async def test_slow_readers_leave_git_working_for_others(tmp_path: Path):
    """More clients than git threads ask for a large pack and never read it; git goes on."""
    async with running_hub(tmp_path / "data") as hub:
        await hub.space_and_model("team", "big", visibility="public")
        await hub.model("team", "other")
        work = tmp_path / "w"
        tip = await push(
            work, {"data.txt": os.urandom(6 * 1024 * 1024)}, clone=hub.remote("team", "big")
        )
        wants = pkt_line(f"want {tip} side-band-64k ofs-delta thin-pack\n".encode()) + b"0000"
        body = wants + pkt_line(b"done\n")
        head = request_head(
            "POST",
            "/team/big.git/git-upload-pack",
            len(body),
            "application/x-git-upload-pack-request",
        )
        async with connections(hub, BLOCKING_THREADS + 8) as readers:
            for _, writer in readers:
                writer.write(head + body)  # and never read the answer
            await asyncio.sleep(1)  # every request has a git thread, or waits for one
            async with asyncio.timeout(GUARD + SLOW_READER_SECONDS):
                listed = await git("ls-remote", hub.remote("team", "other"))
            assert "refs/heads/master" in listed.stdout
            # A reader that starts reading late still gets the whole pack, to its end.
            reader, _ = readers[0]
            answer = b""
            try:
                async with asyncio.timeout(GUARD):
                    while not answer.endswith(b"0000\r\n0\r\n\r\n"):
                        answer += await reader.read(1024 * 1024)
            except TimeoutError:
                raise AssertionError((len(answer), answer[:300], answer[-100:])) from None
        assert answer.startswith(b"HTTP/1.1 200") and len(answer) > 6 * 1024 * 1024

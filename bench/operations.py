"""What the operations routes and the request counting cost (issue 20).

A load balancer asks `/-/health` or `/-/ready` every few seconds on every node and
Prometheus scrapes `/-/metrics`: each must be cheap. Every request is now counted
(family, status, time, bytes): that must cost little beside the request itself. And a
node stopping on SIGTERM with nothing under way should be gone at once.

Prints p50/p99 of `/-/health`, `/-/ready`, `/-/metrics` and `GET /api/v1/me` (one
client, sequential, loopback), the counting's cost per request beside `/api/v1/me`'s
median, and the time from SIGTERM to exit of an idle `amphub serve` (median of 3).

Run: python bench/operations.py [--requests 2000] [--database postgresql://…]
(with --database, the routes run on that PostgreSQL database, which must be empty or
amphub's; the default is SQLite in a temp dir)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import free_port  # noqa: E402

from amphub.config import Config  # noqa: E402 - after the path is set
from amphub.server.app import bootstrap, create_app  # noqa: E402
from amphub.server.connections import HubRunner  # noqa: E402
from amphub.services.metrics import Metrics  # noqa: E402


class HubServer(TestServer):
    async def _make_runner(self, **kwargs):
        return HubRunner(self.app, **kwargs)


def percentile(times: list[float], share: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(share * 100) - 1]


async def timed(session: aiohttp.ClientSession, url: str, n: int, key: str) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    times = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        times.append(time.perf_counter() - started)
    return times


def counting_cost(calls: int = 100_000) -> float:
    """Seconds per `request_answered`, the work the middleware adds to a request."""
    metrics = Metrics()
    started = time.perf_counter()
    for n in range(calls):
        metrics.request_answered("api", 200 if n % 10 else 404, 0.002, 100, 1000)
    return (time.perf_counter() - started) / calls


async def routes(requests: int, database: str) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        config = Config(data_dir=Path(folder) / "data", database=database)
        key = await bootstrap(config)
        assert key is not None
        server = HubServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                base = str(server.make_url("")).rstrip("/")
                await timed(session, base + "/api/v1/me", 200, key)  # warm up
                return {
                    path: await timed(session, base + path, count, key)
                    for path, count in (
                        ("/api/v1/me", requests),
                        ("/-/health", requests),
                        ("/-/ready", requests // 4),
                        ("/-/metrics", requests // 10),
                    )
                }
        finally:
            await server.close()


async def idle_stop_seconds() -> float:
    """SIGTERM to exit of an `amphub serve` with nothing under way."""
    with tempfile.TemporaryDirectory() as folder:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,  # this checkout's amphub
            "-m",
            "amphub",
            "serve",
            "--data",
            folder,
            "--port",
            str(free_port()),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        while b"listening" not in await proc.stdout.readline():
            pass
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        await proc.communicate()
        assert proc.returncode == 0, proc.returncode
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()
    times = await routes(args.requests, args.database)
    for path, values in times.items():
        print(
            f"{path:14} p50 {percentile(values, 0.5) * 1000:6.2f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:6.2f} ms  ({len(values)} requests)"
        )
    cost = counting_cost()
    me = percentile(times["/api/v1/me"], 0.5)
    print(f"counting a request: {cost * 1e6:.1f} µs, {cost / me:.1%} of /api/v1/me's median")
    stops = [await idle_stop_seconds() for _ in range(3)]
    print(f"idle node, SIGTERM to exit: {statistics.median(stops):.2f} s (median of 3)")


if __name__ == "__main__":
    asyncio.run(main())

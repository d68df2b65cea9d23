"""Stress: slow clients and heavy pages must not stall everyone else.

Goals (issue 17, point 2): with 8 clients requesting pathological pages and 40 slow-body
clients running, `GET /api/v1/me` p99 stays under 100 ms and a `git clone` of a small
model finishes within 2x its idle time.

`amphub serve` runs as a child process with its default settings, except that one address
may hold 256 connections (every client here comes from 127.0.0.1). A slow-body client
sends an anonymous `POST …/git-upload-pack` with `Content-Length: 1000000` to a public
model and then one byte every 10 s; when the server cuts it, it starts again. A page
client keeps asking for the page of a model whose README is `'![' * 500000`. The script
measures, idle, with the slow bodies alone, and with both: the latency of `GET
/api/v1/me` (one request every 20 ms, on a kept-alive connection) and the time of a
`git clone` of a model with a few small files (median of --clones).

Run: python bench/stress.py [--seconds 20] [--clones 3] [--slow 40] [--pages 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from common import Server, git_home, log, run_checked, start_amphub, stop_all

PATHOLOGICAL_README = "![" * 500_000
ME_EVERY = 0.02
# Client-side limits, so that a stalled server ends the phase: a request that runs out
# counts with the time it waited.
ME_LIMIT = 5.0
PAGE_LIMIT = 10.0
CLONE_LIMIT = 60.0  # a clone that fails counts as this long
PER_ADDRESS = 256


def percentile(times: list[float], share: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(share * 100) - 1]


def push_files(server: Server, root: Path, env: dict, model: str, files: dict[str, str]) -> None:
    work = root / f"work-{model}"
    run_checked(["git", "clone", "-q", server.git_url("stress", model), str(work)], env=env)
    for name, text in files.items():
        (work / name).write_text(text)
    run_checked(["git", "-C", str(work), "add", "-A"], env=env)
    run_checked(["git", "-C", str(work), "commit", "-q", "-m", "files"], env=env)
    run_checked(["git", "-C", str(work), "push", "-q", "origin", "HEAD"], env=env)


def prepare(server: Server, root: Path, env: dict) -> None:
    body = {"id": "stress", "name": "Stress", "quota": 10 * 1024**3, "billing_mode": "monthly"}
    server.call("POST", "/api/v1/spaces", body)
    for model, visibility in (("small", "private"), ("open", "public"), ("heavy", "public")):
        server.call("POST", "/api/v1/spaces/stress/models", {"id": model, "visibility": visibility})
    small = {f"file-{n}.txt": f"line {n}\n" * 200 for n in range(20)}
    push_files(server, root, env, "small", small)
    push_files(server, root, env, "heavy", {"README.md": PATHOLOGICAL_README})


async def slow_body_client(port: int, stop: asyncio.Event, counts: dict[str, int]) -> None:
    head = (
        b"POST /stress/open.git/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-git-upload-pack-request\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["refused"] += 1
            await asyncio.sleep(1)
            continue
        counts["connections"] += 1
        try:
            writer.write(head)
            while not stop.is_set() and not reader.at_eof():
                writer.write(b"0")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        if await reader.read(65536):
                            counts["answered"] += 1
                            break
        except OSError:
            pass
        finally:
            writer.close()


async def page_client(base: str, stop: asyncio.Event, times: list[float]) -> None:
    limit = aiohttp.ClientTimeout(total=PAGE_LIMIT)
    async with aiohttp.ClientSession(timeout=limit) as session:
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                async with session.get(f"{base}/stress/heavy") as resp:
                    await resp.read()
            times.append(time.perf_counter() - started)


async def me_latencies(server: Server, seconds: float) -> list[float]:
    times = []
    headers = {"Authorization": server.auth}
    deadline = time.perf_counter() + seconds
    limit = aiohttp.ClientTimeout(total=ME_LIMIT)
    async with aiohttp.ClientSession(timeout=limit) as session:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            with contextlib.suppress(TimeoutError):
                async with session.get(f"{server.base}/api/v1/me", headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
            times.append(time.perf_counter() - started)
            await asyncio.sleep(ME_EVERY)
    return times


async def clone_times(server: Server, root: Path, env: dict, count: int) -> list[float]:
    times = []
    for n in range(count):
        target = root / f"clone-{time.monotonic_ns()}-{n}"
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "git", "clone", "-q", server.git_url("stress", "small"), str(target), env=env
        )
        try:
            async with asyncio.timeout(CLONE_LIMIT):
                failed = await proc.wait() != 0
        except TimeoutError:
            proc.kill()
            await proc.wait()
            failed = True
        times.append(CLONE_LIMIT if failed else time.perf_counter() - started)
    return times


async def measure(server, root, env, args) -> tuple[list[float], float]:
    me = asyncio.create_task(me_latencies(server, args.seconds))
    clones = await clone_times(server, root, env, args.clones)
    return await me, statistics.median(clones)


def report(label: str, me: list[float], clone: float, idle_clone: float) -> tuple[float, float]:
    p99 = percentile(me, 0.99) * 1000
    ratio = clone / idle_clone
    print(
        f"  {label:34} /api/v1/me p50 {percentile(me, 0.5) * 1000:6.1f} ms"
        f"  p99 {p99:7.1f} ms  max {max(me) * 1000:7.1f} ms ({len(me)} requests)"
        f"  | git clone {clone:5.2f} s = {ratio:4.2f}x idle"
    )
    return p99, ratio


async def run(args: argparse.Namespace, server: Server, root: Path, env: dict) -> bool:
    port = int(server.base.rsplit(":", 1)[1])
    print(f"{args.slow} slow-body clients, {args.pages} page clients, {args.seconds:.0f} s each:")
    me, idle_clone = await measure(server, root, env, args)
    report("idle", me, idle_clone, idle_clone)

    stop = asyncio.Event()
    counts = {"connections": 0, "answered": 0, "refused": 0}
    slow = [asyncio.create_task(slow_body_client(port, stop, counts)) for _ in range(args.slow)]
    await asyncio.sleep(2)  # every slow client has sent its headers
    me, clone = await measure(server, root, env, args)
    slow_only = report(f"{args.slow} slow bodies", me, clone, idle_clone)

    page_times: list[float] = []
    pages = [
        asyncio.create_task(page_client(server.base, stop, page_times)) for _ in range(args.pages)
    ]
    await asyncio.sleep(2)
    me, clone = await measure(server, root, env, args)
    both = report(f"{args.slow} slow bodies + {args.pages} page clients", me, clone, idle_clone)
    stop.set()
    for task in slow + pages:
        task.cancel()
    await asyncio.gather(*slow, *pages, return_exceptions=True)

    if page_times:
        median = statistics.median(page_times)
        print(
            f"  heavy page: {len(page_times)} asked,"
            f" median {median:.2f} s (cut at {PAGE_LIMIT:.0f} s)"
        )
    print(
        f"  slow-body connections: {counts['connections']} opened,"
        f" {counts['answered']} answered by the server (a cut is a 408),"
        f" {counts['refused']} refused"
    )
    ok = True
    for label, (p99, ratio) in (("slow bodies", slow_only), ("slow bodies + pages", both)):
        held = p99 < 100 and ratio <= 2
        ok = ok and held
        print(
            f"  goal with {label}: me p99 {p99:.1f} ms < 100 ms and clone {ratio:.2f}x <= 2x:"
            f" {'met' if held else 'NOT met'}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds a phase (default 20)")
    parser.add_argument("--clones", type=int, default=3, help="clones a phase (default 3)")
    parser.add_argument("--slow", type=int, default=40, help="slow-body clients (default 40)")
    parser.add_argument("--pages", type=int, default=8, help="page clients (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amphub-stress-") as tmp:
        root = Path(tmp)
        env = git_home(root)
        # Every client here has the one loopback address.
        data = root / "amphub-data"
        data.mkdir()
        (data / "amphub.toml").write_text(f"connections_per_address = {PER_ADDRESS}\n")
        try:
            server = start_amphub(root)
            log("amphub started; pushing the models")
            prepare(server, root, env)
            ok = asyncio.run(run(args, server, root, env))
        except subprocess.CalledProcessError as exc:
            log(f"failed: {exc}")
            return 1
        finally:
            stop_all()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

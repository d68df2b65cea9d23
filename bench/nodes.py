"""Several nodes and PostgreSQL: what a second node and the engine cost (issue 20).

Three hubs in one run, each behind the tests' nginx (tests/load_balancer.py, round robin,
the README's proxy settings) with `base_url` set to it:

- SQLite, one node;
- PostgreSQL, one node;
- PostgreSQL, two nodes (`amphub serve` processes) sharing the database and the data dir.

On each: small API writes (`--writes` models created, then as many member grants;
`--in-flight` at once), p50/p95 of a request and the rate; `--objects` small LFS objects by
`git lfs push --all` (the real git-lfs: batch, PUT, verify); `--clones` clones of a
repository of 20 commits and 1,000 files (median). Then the database is read to check
that nothing was lost (every model, member and object is there). On PostgreSQL,
pg_stat_statements (loaded at the server's start) gives the database's own time and the
statements per request. The two-node / one-node and PostgreSQL / SQLite ratios end it.

PostgreSQL is the tests' (Debian's package, tests/postgres.py), nginx Debian's.
This machine has 2 cores: two nodes cannot go faster here; the figures show what a
second node costs, and the database time a request needs (the path to more nodes).

Run: python bench/nodes.py [--writes 400] [--objects 1000] [--clones 5] [--in-flight 8]
     [--top N]
     (--top: the N statements that took most of the database's time, per part)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psycopg
from common import (
    REPO_ROOT,
    Server,
    free_port,
    git_home,
    postgresql_server,
    run_checked,
    start_amphub,
    stop_all,
)

from amphub import db

sys.path.insert(0, str(REPO_ROOT))
from tests.load_balancer import Nginx  # noqa: E402 - after the path is set

SPACE = "bench"
USERS = 20
SETUPS = [("SQLite, 1 node", "sqlite", 1), ("PostgreSQL, 1 node", "postgresql", 1),
          ("PostgreSQL, 2 nodes", "postgresql", 2)]  # fmt: skip


def percentile(times: list[float], share: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(share * 100) - 1]


class Statements:
    """The database's own time and statement count, from pg_stat_statements (PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url != "sqlite":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def reset(self) -> None:
        if self.url != "sqlite":
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")

    def read(self) -> tuple[float, int]:
        """Seconds spent and statements run in this database since the reset."""
        if self.url == "sqlite":
            return 0.0, 0
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0)"
                " FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND query NOT LIKE '%pg_stat_statements%'"
            ).fetchone()
        assert row is not None
        return float(row[0]) / 1000, int(row[1])

    def top(self, count: int) -> list[str]:
        """The statements that took most of the time since the reset."""
        if self.url == "sqlite":
            return []
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT total_exec_time, calls, query FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND query NOT LIKE '%%pg_stat_statements%%'"
                " ORDER BY total_exec_time DESC LIMIT %s",
                (count,),
            ).fetchall()
        return [f"{ms:8.0f} ms {calls:6} × {' '.join(q.split())[:100]}" for ms, calls, q in rows]


@dataclasses.dataclass
class Figures:
    write_times: list[float] = dataclasses.field(default_factory=list)
    write_seconds: float = 0.0
    write_db: tuple[float, int] = (0.0, 0)
    write_errors: int = 0
    lfs_seconds: float = 0.0
    lfs_db: tuple[float, int] = (0.0, 0)
    clone_seconds: float = 0.0
    lost: list[str] = dataclasses.field(default_factory=list)
    top: list[str] = dataclasses.field(default_factory=list)


async def api_writes(hub: Server, count: int, in_flight: int, figures: Figures) -> None:
    """`count` models created, then one member granted on each, `in_flight` at a time."""
    headers = {"Authorization": hub.auth}
    requests = [("POST", f"/api/v1/spaces/{SPACE}/models", {"id": f"m{i}"}) for i in range(count)]
    grants = [
        ("PUT", f"/api/v1/models/{SPACE}/m{i}/members/u{i % USERS}", {"role": "user"})
        for i in range(count)
    ]

    async def one(session: aiohttp.ClientSession, method: str, path: str, body: dict) -> None:
        started = time.perf_counter()
        async with session.request(method, hub.base + path, json=body, headers=headers) as r:
            await r.read()
            if r.status not in (200, 201):
                figures.write_errors += 1
        figures.write_times.append(time.perf_counter() - started)

    async def run(session: aiohttp.ClientSession, batch: list[tuple[str, str, dict]]) -> None:
        queue = iter(batch)

        async def worker() -> None:
            for method, path, body in queue:
                await one(session, method, path, body)

        await asyncio.gather(*(worker() for _ in range(in_flight)))

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await run(session, requests)
        await run(session, grants)
        figures.write_seconds = time.perf_counter() - started


def lfs_push(hub: Server, root: Path, env: dict[str, str], count: int) -> float:
    """Seconds of `git lfs push --all` of `count` new small objects to a new model."""
    hub.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": "lfs"})
    work = root / "lfs-work"
    run_checked(["git", "init", "-q", "-b", "main", str(work)], env=env)
    run_checked(["git", "lfs", "install", "--local"], cwd=work, env=env)
    run_checked(["git", "lfs", "track", "*.bin"], cwd=work, env=env)
    for i in range(count):
        (work / f"{i:04d}.bin").write_bytes(f"{root.name} object {i}\n".encode() * 40)
    run_checked(["git", "add", "-A"], cwd=work, env=env)
    run_checked(["git", "commit", "-q", "-m", "objects"], cwd=work, env=env)
    run_checked(["git", "remote", "add", "origin", hub.git_url(SPACE, "lfs")], cwd=work, env=env)
    started = time.perf_counter()
    run_checked(["git", "lfs", "push", "--all", "origin"], cwd=work, env=env)
    took = time.perf_counter() - started
    run_checked(["git", "push", "-q", "origin", "main"], cwd=work, env=env)
    return took


def clones(hub: Server, root: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds of a clone of a repository of 20 commits and 1,000 files."""
    hub.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": "code"})
    work = root / "code-work"
    run_checked(["git", "init", "-q", "-b", "main", str(work)], env=env)
    for commit in range(20):
        for i in range(50):
            (work / f"f{commit:02d}-{i:02d}.txt").write_text(f"file {commit} {i}\n" * 30)
        run_checked(["git", "add", "-A"], cwd=work, env=env)
        run_checked(["git", "commit", "-q", "-m", f"c{commit}"], cwd=work, env=env)
    url = hub.git_url(SPACE, "code")
    run_checked(["git", "push", "-q", url, "main"], cwd=work, env=env)
    times = []
    for run in range(runs):
        started = time.perf_counter()
        run_checked(["git", "clone", "-q", url, str(root / f"clone-{run}")], env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def lost(target: Path | str, writes: int, objects: int) -> list[str]:
    """What the database lacks of what the clients were told was stored."""
    async with db.opened(target) as database:
        counts = [
            ("models", writes + 2, "SELECT count(*) FROM models WHERE space_id = ?", SPACE),
            ("members", writes, "SELECT count(*) FROM model_members WHERE space_id = ?", SPACE),
            ("LFS objects", objects, "SELECT count(*) FROM lfs_objects", None),
        ]
        missing = []
        for what, expected, sql, arg in counts:
            rows = await database.fetch_all(sql, () if arg is None else (arg,))
            if rows[0][0] != expected:
                missing.append(f"{what}: {rows[0][0]} of {expected}")
    return missing


def start_nodes(root: Path, url: str, count: int, front: str) -> list[Server]:
    flags = ("--database", url, "--base-url", front)
    first = start_amphub(root, "node-a", flags=flags, env={"AMPHUB_NODE": "a"})
    others = [
        start_amphub(root, f"node-{name}", first.key, flags, {"AMPHUB_NODE": name}, data=first.data)
        for name in "bcd"[: count - 1]
    ]
    return [first, *others]


async def measure(root: Path, url: str, nodes: list[Server], nginx: Nginx, args) -> Figures:
    ports = [int(node.base.rsplit(":", 1)[1]) for node in nodes]
    hub = dataclasses.replace(nodes[0], base=nginx.front(*ports))
    env = git_home(root)
    hub.call(
        "POST",
        "/api/v1/spaces",
        {"id": SPACE, "name": "Bench", "quota": 10 * 1024**3, "billing_mode": "monthly"},
    )
    for i in range(USERS):
        hub.call("POST", "/api/v1/users", {"name": f"u{i}"})
    figures = Figures()
    statements = Statements(url)
    statements.reset()
    await api_writes(hub, args.writes, args.in_flight, figures)
    figures.write_db = statements.read()
    figures.top += statements.top(args.top)
    statements.reset()
    figures.lfs_seconds = lfs_push(hub, root, env, args.objects)
    figures.lfs_db = statements.read()
    figures.top += statements.top(args.top)
    figures.clone_seconds = clones(hub, root, env, args.clones)
    target = nodes[0].data / "amphub.db" if url == "sqlite" else url
    figures.lost = await lost(target, args.writes, args.objects)
    return figures


def report(label: str, figures: Figures, writes: int, objects: int) -> None:
    times = figures.write_times
    requests = len(times)
    p50, p95 = (percentile(times, s) * 1000 for s in (0.5, 0.95))
    line = (
        f"{label:20} API writes: {requests / figures.write_seconds:6.0f}/s  p50 {p50:5.1f} ms"
        f"  p95 {p95:5.1f} ms"
    )
    db_seconds, calls = figures.write_db
    if calls:
        line += f"  db {db_seconds / requests * 1000:.2f} ms, {calls / requests:.1f} stmts/request"
    print(line)
    line = f"{'':20} LFS: {objects} objects in {figures.lfs_seconds:5.2f} s"
    line += f" ({objects / figures.lfs_seconds:4.0f}/s)"
    db_seconds, calls = figures.lfs_db
    if calls:
        line += f"  db {db_seconds / objects * 1000:.2f} ms, {calls / objects:.1f} stmts/object"
    print(line + f";  clone: {figures.clone_seconds * 1000:.0f} ms (median)")
    print(f"{'':20} errors: {figures.write_errors}; lost: {', '.join(figures.lost) or 'nothing'}")
    for line in figures.top:
        print(f"{'':20} {line}")


def ratios(results: dict[str, Figures]) -> None:
    sqlite, pg, two = (results[label] for label, _, _ in SETUPS)

    def rate(f: Figures) -> float:
        return len(f.write_times) / f.write_seconds

    def p(f: Figures, share: float) -> float:
        return percentile(f.write_times, share)

    print("two nodes / one node (PostgreSQL):")
    print(
        f"  API writes: rate {rate(two) / rate(pg):.2f}×, p50 {p(two, 0.5) / p(pg, 0.5):.2f}×,"
        f" p95 {p(two, 0.95) / p(pg, 0.95):.2f}×;"
        f"  LFS rate {pg.lfs_seconds / two.lfs_seconds:.2f}×;"
        f"  clone time {two.clone_seconds / pg.clone_seconds:.2f}×"
    )
    print("PostgreSQL / SQLite (one node):")
    print(
        f"  API writes: rate {rate(pg) / rate(sqlite):.2f}×,"
        f" p50 {p(pg, 0.5) / p(sqlite, 0.5):.2f}×;"
        f"  LFS rate {sqlite.lfs_seconds / pg.lfs_seconds:.2f}×;"
        f"  clone time {pg.clone_seconds / sqlite.clone_seconds:.2f}×"
    )


async def run(args: argparse.Namespace, root: Path) -> None:
    results: dict[str, Figures] = {}
    nginx_folder = root / "nginx"
    nginx_folder.mkdir()
    nginx = Nginx(nginx_folder, free_port())
    try:
        with postgresql_server("shared_preload_libraries=pg_stat_statements") as pg:
            for n, (label, engine, count) in enumerate(SETUPS):
                folder = root / f"setup-{n}"
                folder.mkdir()
                url = "sqlite" if engine == "sqlite" else pg.create_database()  # type: ignore[attr-defined]
                nodes = start_nodes(folder, url, count, nginx.url)
                try:
                    results[label] = await measure(folder, url, nodes, nginx, args)
                finally:
                    stop_all()
                report(label, results[label], args.writes, args.objects)
    finally:
        nginx.stop()
    ratios(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--clones", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=8, help="API writes at once (8)")
    parser.add_argument(
        "--top", type=int, default=0, help="print the statements that took most database time"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amphub-nodes-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()

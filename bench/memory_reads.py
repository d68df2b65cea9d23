"""Benchmark: server memory while many clients read the largest file git may hold at once.

One `amphub serve` on loopback; a model gets a random `--mib` MiB file committed without
LFS (100 MiB, the default `max_git_file_size`) by `git push`. The server is restarted,
then `--clients` clients read the file at once, whole, through each route in turn: the
blob API, the web page's raw download and the Hub's resolve. The server's resident memory
(VmRSS of its process) is sampled every 10 ms throughout. With `--delta`, a change to the
file is pushed too, which git sends (and amphub stores) as a delta: reads of it are served
from the one rebuilt copy that the first read makes.

Prints the baseline (after the push, before the reads), the peak during each route's
reads, the growth over the baseline and whether it stays under 200 MB (the goal).

    /work/venv/bin/python bench/memory_reads.py [--mib 100] [--clients 10] [--delta] [--keep]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

from common import (
    git_home,
    log,
    run_checked,
    run_folder,
    start_amphub,
    stop_and_clean,
    stop_process,
)

SPACE, MODEL, FILE = "bench", "big", "data/big.dat"
GOAL_MB = 200
READ_CHUNK = 1024 * 1024
ROUTES = {
    "blob API": f"/api/v1/models/{SPACE}/{MODEL}/blob/master/{FILE}",
    "raw": f"/{SPACE}/{MODEL}/raw/master/{FILE}",
    "resolve": f"/{SPACE}/{MODEL}/resolve/main/{FILE}",
}


def rss_bytes(pid: int) -> int:
    """The resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Sampler(threading.Thread):
    """Samples a process's RSS until stopped; remembers the peak since the last reset."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.01)

    def reset(self) -> None:
        self.peak = rss_bytes(self.pid)


def settled_rss(pid: int) -> int:
    """The RSS once it is stable within 1 MB for 2 s (or after 20 s)."""
    last, stable, deadline = rss_bytes(pid), 0, time.monotonic() + 20
    while stable < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_bytes(pid)
        stable = stable + 1 if abs(now - last) < 1e6 else 0
        last = now
    return last


def read_whole(url: str, auth: str, size: int, errors: list[str]) -> None:
    request = urllib.request.Request(url, headers={"Authorization": auth})
    got = 0
    with urllib.request.urlopen(request, timeout=600) as resp:
        while chunk := resp.read(READ_CHUNK):
            got += len(chunk)
    if got != size:
        errors.append(f"{url}: {got} bytes, expected {size}")


def mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100, help="size of the file (MiB)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument(
        "--delta", action="store_true", help="read a second version, stored as a delta"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    root = run_folder("memory-reads-")
    env = git_home(root)
    try:
        server = start_amphub(root)
        space = {"id": SPACE, "name": SPACE, "quota": 10 * 1024**3, "billing_mode": "monthly"}
        server.call("POST", "/api/v1/spaces", space)
        server.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": MODEL})
        work = root / "work"
        run_checked(["git", "clone", "-q", server.git_url(SPACE, MODEL), str(work)], env=env)
        (work / "data").mkdir()
        with (work / FILE).open("wb") as out:
            for _ in range(args.mib):
                out.write(os.urandom(1024 * 1024))
        run_checked(["git", "add", FILE], cwd=work, env=env)
        run_checked(["git", "commit", "-q", "-m", "big"], cwd=work, env=env)
        log(f"pushing a {args.mib} MiB file without LFS")
        run_checked(["git", "push", "-q", "origin", "master"], cwd=work, env=env)
        if args.delta:
            with (work / FILE).open("r+b") as out:
                out.seek(size // 2)
                out.write(b"changed")
            run_checked(["git", "commit", "-q", "-am", "changed"], cwd=work, env=env)
            log("pushing a change to it, which git sends as a delta")
            run_checked(["git", "push", "-q", "origin", "master"], cwd=work, env=env)
        # A fresh server for the reads: the baseline must not hold what the push freed.
        stop_process(server.proc)
        server = start_amphub(root, key=server.key)
        baseline = settled_rss(server.proc.pid)
        sampler = Sampler(server.proc.pid)
        sampler.start()
        stored = "as a delta" if args.delta else "whole"
        print(
            f"file {args.mib} MiB stored {stored}, {args.clients} clients at once;"
            f" baseline RSS {mb(baseline)}"
        )
        worst = 0
        for name, path in ROUTES.items():
            sampler.reset()
            errors: list[str] = []
            call = (server.base + path, server.auth, size, errors)
            readers = [threading.Thread(target=read_whole, args=call) for _ in range(args.clients)]
            started = time.monotonic()
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            took = time.monotonic() - started
            if errors:
                raise RuntimeError("; ".join(errors))
            growth = sampler.peak - baseline
            worst = max(worst, growth)
            print(f"{name:9} peak {mb(sampler.peak)}  growth {mb(growth)}  ({took:.1f} s)")
        sampler.done.set()
        verdict = "meets" if worst < GOAL_MB * 1e6 else "misses"
        print(f"largest growth {mb(worst)}: {verdict} the goal of < {GOAL_MB} MB")
        return 0 if worst < GOAL_MB * 1e6 else 1
    finally:
        stop_and_clean(root, args.keep)


if __name__ == "__main__":
    sys.exit(main())

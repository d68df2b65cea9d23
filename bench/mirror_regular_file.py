"""Benchmark: the mirror's memory while it fetches a large regular (non-LFS) upstream file.

One `amphub serve` on loopback is the mirror; the upstream is a small HTTP server in this
script answering as the Hub does for a repo whose one `--mib` MiB file is kept in git
(model info with `blobs=true`: `size`, no `lfs`; `resolve` streams the content). The
mirror's resident memory (VmRSS of its process) is sampled every 10 ms during the fetch.
The file streams through scratch space into an LFS object, so the growth over the
baseline must not follow the file's size.

Prints the baseline, the peak during the fetch, the growth, the fetch's seconds and the
growth as a share of the file (goal: growth under 200 MB whatever the file's size).

    /work/venv/bin/python bench/mirror_regular_file.py [--mib 512] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import log, run_folder, start_amphub, stop_and_clean
from memory_reads import Sampler, mb, settled_rss

COMMIT = "5" * 40
BLOCK = os.urandom(1024 * 1024)
GOAL_MB = 200


def upstream_handler(size: int) -> type[BaseHTTPRequestHandler]:
    """The Hub's two answers the fetch asks for, for the repo acme/big."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path.startswith("/api/models/acme/big/revision/main"):
                sibling = {"rfilename": "vocab.txt", "blobId": "0" * 40, "size": size}
                body = json.dumps({"id": "acme/big", "sha": COMMIT, "siblings": [sibling]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())
            elif self.path == f"/acme/big/resolve/{COMMIT}/vocab.txt":
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                for _ in range(size // len(BLOCK)):
                    self.wfile.write(BLOCK)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="size of the file (MiB)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    size = args.mib * len(BLOCK)
    root = run_folder("mirror-regular-")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), upstream_handler(size))
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        mirror = start_amphub(root, "mirror")
        space = {"id": "hf", "name": "hf", "quota": 10 * 1024**3, "billing_mode": "monthly"}
        mirror.call("POST", "/api/v1/spaces", space)
        url = f"http://127.0.0.1:{upstream.server_address[1]}"
        mirror.call("POST", "/api/v1/upstreams", {"name": "up", "url": url, "space": "hf"})
        baseline = settled_rss(mirror.proc.pid)
        sampler = Sampler(mirror.proc.pid)
        sampler.reset()
        sampler.start()
        log(f"mirroring acme/big: one regular file of {args.mib} MiB")
        start = time.perf_counter()
        task = mirror.call("POST", "/api/v1/upstreams/up/mirrors", {"repo": "acme/big"})
        while task["status"] in ("queued", "running"):
            time.sleep(0.05)
            task = mirror.call("GET", f"/api/v1/tasks/{task['id']}")
        seconds = time.perf_counter() - start
        sampler.done.set()
        if task["status"] != "succeeded":
            raise RuntimeError(f"the mirror task {task['status']}: {task['message']}")
        growth = sampler.peak - baseline
        print(f"file: {args.mib} MiB, regular (in git upstream), kept as an LFS object")
        print(f"fetch task: {seconds:.2f} s ({size / 1e6 / seconds:.0f} MB/s)")
        print(f"mirror RSS: baseline {mb(baseline)}, peak {mb(sampler.peak)}")
        met = "met" if growth < GOAL_MB * 1e6 else "NOT met"
        share = growth / size
        print(f"growth: {mb(growth)} = {share:.2f} of the file (goal < {GOAL_MB} MB: {met})")
        return 0
    finally:
        upstream.shutdown()
        stop_and_clean(root, args.keep)


if __name__ == "__main__":
    sys.exit(main())

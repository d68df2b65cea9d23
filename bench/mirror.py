"""Benchmark: snapshot_download through an amphub mirror against one from the upstream itself.

Two `amphub serve` on loopback: the upstream holds a model with `--gib` GiB of LFS weights
(`--files` safetensors files) and a small config; the mirror has the upstream registered
(with a token) and a mirror space `hf`. Each download runs `snapshot_download` in a fresh
Python process with HF_ENDPOINT and HF_TOKEN set and an empty HF_HOME, as a user's script:

- first through the mirror (`hf/bench__weights`, not there yet): fetch + scan + serve. The
  mirror holds the script's first call (model info) until the model is fetched and
  scanned, so the script is the same plain `snapshot_download` as the direct one;
- then `--rounds` rounds of a direct download from the upstream (`bench/weights`) and a
  second one from the mirror's own copy, in turns (direct first in one round, the mirror
  first in the next), so that both see the same machine.

Prints the times and the ratios to the median direct download: first (goal ≤ 2.0) and the
median second (goal ≤ 1.0). Both servers are the same amphub on the same machine, so the
second ratio measures what the mirror adds (its scan gate); the spread of the rounds shows
how far one round may stray.

    .venv/bin/python bench/mirror.py [--gib 1] [--files 4] [--rounds 10] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import time
from datetime import datetime
from pathlib import Path
from statistics import median

from common import PYTHON, git_home, log, run_checked, run_folder, start_amphub, stop_and_clean

SPACE, MODEL = "bench", "weights"
MIRROR_SPACE = "hf"
FIRST_GOAL, SECOND_GOAL = 2.0, 1.0
PIECE = 16 * 1024 * 1024
# A user's script as it is: no retry of its own (the mirror holds its first call).
DOWNLOAD = """
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1]))
"""


def safetensors_file(path: Path, size: int) -> None:
    """A valid safetensors file of one tensor of random bytes (the scan reads its header)."""
    data = size - 64
    header = json.dumps({"w": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}})
    header += " " * (-len(header) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(header)) + header.encode())
        left = data
        while left > 0:
            piece = os.urandom(min(PIECE, left))
            out.write(piece)
            left -= len(piece)


def seconds_between(start: str, end: str) -> float:
    """Seconds between two of the API's ISO times."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def rounded(times: list[float]) -> list[float]:
    """Seconds to a hundredth, for printing."""
    return [round(t, 2) for t in times]


def download(server, root: Path, repo: str, name: str) -> tuple[float, int]:
    """Seconds and bytes of one snapshot_download in a fresh process and HF_HOME."""
    home = root / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | {
        "HF_ENDPOINT": server.base,
        "HF_TOKEN": server.key,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    start = time.perf_counter()
    run_checked([PYTHON, "-c", DOWNLOAD, repo], cwd=root, env=env)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (home / "hub").rglob("blobs/*"))
    shutil.rmtree(home)
    return seconds, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = run_folder("mirror-")
    env = git_home(root)
    try:
        run_checked(["git", "lfs", "install", "--skip-repo"], cwd=root, env=env)
        upstream = start_amphub(root, "upstream")
        mirror = start_amphub(root, "mirror")
        space = {"id": SPACE, "name": SPACE, "quota": 100 * 1024**3, "billing_mode": "monthly"}
        upstream.call("POST", "/api/v1/spaces", space)
        upstream.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": MODEL})
        mirror.call("POST", "/api/v1/spaces", space | {"id": MIRROR_SPACE, "name": "hf"})
        body = {"name": "up", "url": upstream.base, "space": MIRROR_SPACE, "token": upstream.key}
        mirror.call("POST", "/api/v1/upstreams", body)

        size = int(args.gib * 1024**3) // args.files
        total = size * args.files
        log(f"pushing {args.files} LFS files of {size / 1024**2:.0f} MiB to the upstream")
        work = root / "work"
        run_checked(
            ["git", "clone", "-q", upstream.git_url(SPACE, MODEL), str(work)], cwd=root, env=env
        )
        for i in range(args.files):
            safetensors_file(work / f"model-{i + 1:05}-of-{args.files:05}.safetensors", size)
        (work / "config.json").write_text('{"hidden_size": 4096}\n')
        run_checked(["git", "add", "-A"], cwd=work, env=env)
        run_checked(["git", "commit", "-q", "-m", "weights"], cwd=work, env=env)
        run_checked(["git", "push", "-q", "origin", "master"], cwd=work, env=env)
        shutil.rmtree(work)
        os.sync()

        mirrored = f"{MIRROR_SPACE}/{SPACE}__{MODEL}"
        log("snapshot_download through the mirror, first (fetch + scan + serve)")
        first, got = download(mirror, root, mirrored, "first")
        assert got >= total, f"short download: {got} bytes"
        os.sync()
        stages = {}
        for kind in ("mirror", "scan"):
            task = mirror.call("GET", f"/api/v1/tasks?kind={kind}")["tasks"][0]
            stages[kind] = seconds_between(task["started_at"], task["finished_at"])
        direct: list[float] = []
        second: list[float] = []
        turns = ((upstream, f"{SPACE}/{MODEL}", direct), (mirror, mirrored, second))
        for round_ in range(args.rounds):
            for server, repo, times in turns if round_ % 2 == 0 else reversed(turns):
                log(f"round {round_ + 1}: snapshot_download from {repo}")
                seconds, got = download(server, root, repo, f"{repo.replace('/', '-')}-{round_}")
                times.append(seconds)
                assert got >= total, f"short download: {got} bytes"
                os.sync()
        base = median(direct)
        print(f"model: {args.files} LFS files, {total / 1024**3:.2f} GiB")
        print(f"direct from the upstream:  median {base:.2f} s of {rounded(direct)}")
        print(f"first through the mirror:  {first:.2f} s (fetch + scan + serve)")
        fetch, scan = stages["mirror"], stages["scan"]
        print(f"  of which the fetch task {fetch:.0f} s, the scan {scan:.0f} s (whole seconds)")
        print(f"second from the mirror:    median {median(second):.2f} s of {rounded(second)}")
        ratios = (first / base, FIRST_GOAL, "first"), (median(second) / base, SECOND_GOAL, "second")
        for ratio, goal, which in ratios:
            met = "met" if round(ratio, 2) <= goal else "NOT met"
            print(f"ratio {which} / direct: {ratio:.2f} (goal ≤ {goal}: {met})")
        return 0
    finally:
        stop_and_clean(root, args.keep)


if __name__ == "__main__":
    sys.exit(main())

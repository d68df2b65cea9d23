"""Benchmark: amphub's sync of a model to a peer against doing it by hand with git.

Two `amphub serve` processes on loopback, a source and a peer. The source holds a model
with `--gib` GiB of LFS objects (`--files` random files). In the same run:

- by hand: `git clone` from the source, `git lfs pull`, then `git push` (which uploads the
  LFS objects first, as git-lfs's pre-push hook does) to a new model on the peer;
- amphub: `POST /api/v1/models/{space}/{model}/syncs` to the peer's zone, timed until the
  task has succeeded;
- a re-sync of the same, unchanged commit (goal: under 1 s).

Both send every byte to the peer: an object stored on the peer for another model must be
sent again before it is linked. Prints the ratio sync / by hand (goal ≤ 1.0).

    /work/venv/bin/python bench/sync.py [--gib 1] [--files 8] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from common import git_home, log, run_checked, run_folder, start_amphub, stop_and_clean

SPACE, MODEL = "bench", "weights"
GOALS = {"ratio": 1.0, "resync_s": 1.0}
PIECE = 16 * 1024 * 1024


def git(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    run_checked(["git", *args], cwd=cwd, env=env)


def random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left > 0:
            piece = os.urandom(min(PIECE, left))
            out.write(piece)
            left -= len(piece)


def wait_task(server, task_id: int) -> dict:
    while True:
        task = server.call("GET", f"/api/v1/tasks/{task_id}")
        if task["status"] in ("succeeded", "failed", "canceled"):
            return task
        time.sleep(0.02)


def sync(source, zone: str) -> tuple[float, dict]:
    start = time.perf_counter()
    task = source.call(
        "POST", f"/api/v1/models/{SPACE}/{MODEL}/syncs", {"ref": "master", "zone": zone}
    )
    done = wait_task(source, task["id"])
    seconds = time.perf_counter() - start
    if done["status"] != "succeeded":
        raise RuntimeError(f"sync {done['status']}: {done['message']}")
    return seconds, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = run_folder("sync-")
    env = git_home(root)
    try:
        git(["lfs", "install", "--skip-repo"], root, env)
        source, peer = start_amphub(root, "source"), start_amphub(root, "peer")
        space = {"id": SPACE, "name": SPACE, "quota": 100 * 1024**3, "billing_mode": "monthly"}
        for server in (source, peer):
            server.call("POST", "/api/v1/spaces", space)
        source.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": MODEL})
        peer.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": "byhand"})
        syncer = peer.call("POST", "/api/v1/users", {"name": "syncer", "creator": True})
        peer.call("PUT", f"/api/v1/spaces/{SPACE}/members/syncer", {"role": "maintainer"})
        source.call(
            "POST",
            "/api/v1/zones",
            {"name": "peer", "url": peer.base, "user": "syncer", "key": syncer["key"]},
        )

        size = int(args.gib * 1024**3) // args.files
        log(f"pushing {args.files} LFS files of {size / 1024**2:.0f} MiB to the source")
        work = root / "work"
        git(["clone", "-q", source.git_url(SPACE, MODEL), str(work)], root, env)
        for i in range(args.files):
            random_file(work / f"shard-{i:02}.bin", size)
        git(["add", "-A"], work, env)
        git(["commit", "-q", "-m", "weights"], work, env)
        git(["push", "-q", "origin", "master"], work, env)
        shutil.rmtree(work)
        os.sync()

        log("by hand: git clone + git lfs pull from the source, git push to the peer")
        start = time.perf_counter()
        hand = root / "hand"
        git(
            ["clone", "-q", source.git_url(SPACE, MODEL), str(hand)],
            root,
            env | {"GIT_LFS_SKIP_SMUDGE": "1"},
        )
        git(["lfs", "pull"], hand, env)
        git(["push", "-q", "--force", peer.git_url(SPACE, "byhand"), "master"], hand, env)
        by_hand = time.perf_counter() - start
        shutil.rmtree(hand)
        os.sync()

        log("amphub: sync to the peer's zone")
        synced, task = sync(source, "peer")
        log("amphub: sync of the same commit again")
        resynced, again = sync(source, "peer")
        ratio = synced / by_hand
        sent = task["result"]["lfs_bytes_sent"]
        print(f"model: {args.files} files, {sent / 1024**3:.2f} GiB of LFS sent by the sync")
        print(f"by hand (clone + lfs pull + push): {by_hand:.2f} s")
        print(f"amphub sync:                       {synced:.2f} s")
        print(f"ratio sync / by hand: {ratio:.2f} (goal ≤ {GOALS['ratio']})")
        print(
            f"re-sync of the unchanged commit: {resynced:.3f} s, "
            f"{again['result']['lfs_bytes_sent']} bytes, "
            f"{again['result']['git_objects_sent']} git objects (goal < {GOALS['resync_s']} s)"
        )
        met = ratio <= GOALS["ratio"] and resynced < GOALS["resync_s"]
        print("goals met" if met else "goals NOT met")
        return 0
    finally:
        stop_and_clean(root, args.keep)


if __name__ == "__main__":
    sys.exit(main())

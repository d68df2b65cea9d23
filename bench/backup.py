"""Benchmark: `amphub backup` again and again during `--seconds` of mixed writes, each restored.

One `amphub serve` on loopback takes, from three writers at once, git pushes with LFS files
to two models, and new models (each with an LFS push) of which every other one is deleted
again. Meanwhile `amphub backup` runs back to back. Afterwards each backup is restored into
a new data dir, checked by `amphub doctor`, and served: start-up repair found nothing, every
model clones with `git fsck --strict` and `git lfs fsck` clean, every push acknowledged
before that backup began is in it, no model deleted before it is, and the LFS store holds
exactly the objects its database names. Prints how long backups took and how many came back clean
(goal: all).

    /work/venv/bin/python bench/backup.py [--seconds 30] [--dest /dev/shm/backups] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import PYTHON, REPO_ROOT, git_home, log, run_checked, start_amphub, stop_all
from common import stop_process as stop

SPACE = "bench"
KIB = 1024


class Writes:
    """What the writers had acknowledged, in order, with the time each was."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: list[tuple[float, str, str]] = []  # (when, "push" | "delete", model:commit)

    def add(self, kind: str, what: str) -> None:
        with self.lock:
            self.done.append((time.monotonic(), kind, what))

    def before(self, moment: float) -> list[tuple[float, str, str]]:
        with self.lock:
            return [w for w in self.done if w[0] < moment]


def push(env: dict[str, str], work: Path, url: str, files: dict[str, bytes], note: str) -> str:
    if not work.exists():
        run_checked(["git", "clone", "-q", url, str(work)], env=env)
    for name, data in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    run_checked(["git", "add", "--", *files], cwd=work, env=env)
    run_checked(["git", "commit", "-q", "-m", note], cwd=work, env=env)
    run_checked(["git", "push", "-q", "origin", "HEAD"], cwd=work, env=env)
    return run_checked(["git", "rev-parse", "HEAD"], cwd=work, env=env).stdout.decode().strip()


def pushes(server, env, root: Path, model: str, writes: Writes, deadline: float) -> None:
    i = 0
    while time.monotonic() < deadline:
        files = {f"weights/w{i}.bin": os.urandom(64 * KIB * (1 + i % 16)), "log.txt": b"%d" % i}
        url = server.git_url(SPACE, model)
        writes.add("push", f"{model}:{push(env, root / f'w-{model}', url, files, f'step {i}')}")
        i += 1


def churn(server, env, root: Path, writes: Writes, deadline: float) -> None:
    i = 0
    while time.monotonic() < deadline:
        model = f"new{i}"
        server.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": model})
        files = {"model.safetensors": os.urandom(32 * KIB)}
        commit = push(env, root / f"w-{model}", server.git_url(SPACE, model), files, "first")
        writes.add("push", f"{model}:{commit}")
        if i % 2 and i >= 2:
            server.call("DELETE", f"/api/v1/models/{SPACE}/new{i - 2}")
            writes.add("delete", f"new{i - 2}")
        i += 1


def check(
    root: Path, env: dict[str, str], backup: Path, key: str, acked: list, ever_deleted: set[str]
) -> list[str]:
    """What is wrong with a backup once restored and served; empty when it is clean.

    A model deleted while the backup ran may be in it or not.
    """
    data = root / f"{backup.name}-data"
    restore = [PYTHON, "-m", "amphub", "restore", str(backup), "--data", str(data)]
    run_checked(restore, cwd=REPO_ROOT)
    doctor = [PYTHON, "-m", "amphub", "doctor", "--data", str(data)]
    found = subprocess.run(doctor, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if found.returncode:
        return [f"amphub doctor: {found.stdout}{found.stderr}"]
    with sqlite3.connect(data / "amphub.db") as conn:
        models = {m for (m,) in conn.execute("SELECT id FROM models")}
        rows = {oid for (oid,) in conn.execute("SELECT oid FROM lfs_objects")}
    stored = {p.name for p in (data / "lfs" / "objects").rglob("*") if p.is_file()}
    wrong = [f"{len(stored ^ rows)} LFS objects in the store or the database only"] * (
        stored != rows
    )
    deleted = {what for _, kind, what in acked if kind == "delete"}
    wrong += [f"model {m} deleted before the backup is in it" for m in models & deleted]
    server = start_amphub(root, backup.name, key)
    try:
        for model in sorted(models):
            clone = root / "clones" / backup.name / model
            run_checked(["git", "clone", "-q", server.git_url(SPACE, model), str(clone)], env=env)
            run_checked(["git", "fsck", "--full", "--strict"], cwd=clone, env=env)
            run_checked(["git", "lfs", "fsck"], cwd=clone, env=env)
            for _, kind, what in acked:
                name, _, commit = what.partition(":")
                if kind == "push" and name == model:
                    is_in = ["git", "merge-base", "--is-ancestor", commit, "HEAD"]
                    run_checked(is_in, cwd=clone, env=env)
        pushed = {w.partition(":")[0] for _, kind, w in acked if kind == "push"}
        lost = pushed - ever_deleted - models
        wrong += [f"model {m} pushed before the backup is missing" for m in sorted(lost)]
    except RuntimeError as exc:
        wrong.append(str(exc))
    finally:
        stop(server.proc)
    log_text = (root / f"{backup.name}.log").read_text()
    wrong += [line for line in log_text.splitlines() if "repair:" in line]
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs for a look")
    parser.add_argument(
        "--dest", type=Path, help="put the backups here: on another file system, files are copied"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="amphub-backup-bench-"))
    env = git_home(root)
    run_checked(["git", "lfs", "install", "--skip-repo"], env=env)
    try:
        server = start_amphub(root)
        server.call(
            "POST",
            "/api/v1/spaces",
            {"id": SPACE, "name": "Bench", "quota": 10 * 1024**3, "billing_mode": "monthly"},
        )
        for model in ("m0", "m1"):
            server.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": model})
        writes = Writes()
        deadline = time.monotonic() + args.seconds
        writers = [
            threading.Thread(target=pushes, args=(server, env, root, m, writes, deadline))
            for m in ("m0", "m1")
        ] + [threading.Thread(target=churn, args=(server, env, root, writes, deadline))]
        for writer in writers:
            writer.start()
        backups: list[tuple[Path, float, float, list]] = []
        caught = 0  # backups during which a model they copied was deleted
        while time.monotonic() < deadline - 1:
            dest = (args.dest or root / "backups") / f"b{len(backups)}"
            began = time.monotonic()
            acked = writes.before(began)
            cmd = [PYTHON, "-m", "amphub", "backup", str(dest), "--data", str(server.data)]
            said = run_checked(cmd, cwd=REPO_ROOT).stdout.decode()
            caught += "was deleted while the backup ran" in said
            backups.append((dest, began, time.monotonic(), acked))
            time.sleep(0.2)
        for writer in writers:
            writer.join()
        stop(server.proc)
        log(f"{len(writes.done)} writes acknowledged, {len(backups)} backups; last said:\n{said}")
        during = [
            sum(1 for w in writes.done if began <= w[0] <= ended) for _, began, ended, _ in backups
        ]
        seconds = [ended - began for _, began, ended, _ in backups]
        clean = 0
        ever_deleted = {what for _, kind, what in writes.done if kind == "delete"}
        for dest, _, _, acked in backups:
            wrong = check(root, env, dest, server.key, acked, ever_deleted)
            clean += not wrong
            for problem in wrong:
                log(f"{dest.name}: {problem}")
        print(f"writes acknowledged in {args.seconds:.0f} s: {len(writes.done)}")
        print(
            f"backups: {len(backups)}, each {statistics.median(seconds):.2f} s median"
            f" ({max(seconds):.2f} s at most, a process start included)"
        )
        print(f"writes acknowledged while a backup ran: {sum(during)} ({max(during)} at most)")
        print(f"backups that caught a model's deletion under way: {caught}")
        print(f"restored clean: {clean} of {len(backups)} (goal: all)")
        return 0 if clean == len(backups) else 1
    finally:
        stop_all()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            if args.dest:
                shutil.rmtree(args.dest, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

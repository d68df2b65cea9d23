"""The console's long lists: 10,000 users, spaces and models, paged through the real API.

Goal (issue: the admin console): the first page of each list shows in under 300 ms, and
scrolling loads more without freezing the screen.

The bench fills a data dir through the database layer (no git repositories: sizes are
0), starts `amphub serve` on it as a separate process, and runs the console headless
against it. For each list it prints the time from pressing the tab's key to the first
page on screen, the time of each further page (from asking to showing), and the longest
the console's event loop was held while those pages loaded (a frozen screen would show
as a long stall).

Run: python bench/tui.py [--count 10000] [--pages 10] [--data DIR] [--port 18930]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from textual import events
from textual.message import Message

from amphub import db
from amphub.cards import parse_card
from amphub.clock import rfc3339, system_clock
from amphub.config import Config
from amphub.server.app import bootstrap
from amphub.services.cards import card_row
from amphub.storage.repos import create_model_repo
from amphub.tui.app import ConsoleApp
from amphub.tui.client import ApiClient
from amphub.tui.paged_table import PagedTable

GIB = 1024**3
READMES = [
    "---\nTraining framework: [PyTorch, Transformers]\nJob type:\n  Type: Natural language"
    " processing\n  Algorithm: Text Generation\nOther tag: [en]\nOpen-source protocol: mit\n---\n",
    "---\nlibrary_name: timm\npipeline_tag: image-classification\nlicense: apache-2.0\n---\n",
    "---\nTraining framework: [PaddlePaddle]\nJob type:\n  Type: Audio\n"
    "  Algorithm: Automatic Speech Recognition\n---\n",
]
TABS = (("1", "users-table"), ("2", "spaces-table"), ("3", "models-table"))


async def fill(config: Config, count: int) -> str:
    """Users, spaces (one model each) and models with cards; the administrator's key."""
    key = await bootstrap(config)
    assert key is not None, "the data dir must be empty"
    now = rfc3339(system_clock())
    cards = [parse_card(text) for text in READMES]
    start = time.perf_counter()
    async with db.opened(config.db_path) as database:
        async with database.transaction() as conn:
            await conn.executemany(
                "INSERT INTO users (name, key_hash, admin, creator, created_at)"
                " VALUES (?, ?, 0, ?, ?)",
                [
                    (f"user{i:05d}", hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                     i % 3 == 0, now)
                    for i in range(count)
                ],
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO spaces (id, name, quota, billing_mode, expires_at, creator,"
                " created_at) VALUES (?, ?, ?, 'pay_as_you_go', NULL, 'admin', ?)",
                [(f"space{i:05d}", f"Space {i}", 10 * GIB, now) for i in range(count)],
            )
            models = [
                db.Model(f"space{i:05d}", f"model-{i:05d}", f"Model {i}", "private", "admin",
                         now, now)
                for i in range(count)
            ]  # fmt: skip
            await conn.executemany(
                "INSERT INTO models (space_id, id, name, visibility, owner, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(m.space_id, m.id, m.name, m.visibility, m.owner, now, now) for m in models],
            )
        for i, model in enumerate(models):
            row = card_row(model, None, cards[i % len(cards)])
            await db.store_card(database, model.space_id, model.id, row)
    # Each row's repository, copied from one: the server would make the missing ones at
    # start (the repair of a creation cut short), for minutes before it listens.
    template = config.tmp_dir / "template.git"
    create_model_repo(template, "Model", "admin")
    for model in models:
        shutil.copytree(template, config.repos_dir / model.space_id / f"{model.id}.git")
    shutil.rmtree(template)
    print(f"filled {count:,} users, spaces and models in {time.perf_counter() - start:.1f} s")
    return key


async def serve(data_dir: Path, port: int) -> asyncio.subprocess.Process:
    """`amphub serve` on the data dir, once it says it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "amphub",
        "serve",
        "--data",
        str(data_dir),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    while b"listening" not in await asyncio.wait_for(proc.stdout.readline(), 60):
        pass
    return proc


class StallMeter:
    """The longest the event loop was held, sampled by a 5 ms ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.005)
            last = now

    def start(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        return self.longest


async def first_page(pilot, table: PagedTable, seen: Seen, keys: tuple[str, ...]) -> float:
    """Seconds from the app getting the last of `keys` to the first page in the table.

    Timed from the key's arrival, not from the call that sends it: Pilot's own waiting
    around a key press is not something a person at the terminal waits for.
    """
    seen.clear()
    await pilot.press(*keys)
    while not seen.page(table, 1):
        await pilot.pause(0.001)
    asked = seen.pages(table)[0].seconds
    # The key's arrival is seen a little late at times: never report less than the request.
    return max(seen.page(table, 1) - seen.key(keys[-1]), asked)


class Seen:
    """Key presses and loaded pages, each with when the app first had it."""

    def __init__(self) -> None:
        self.messages: list[tuple[Message, float]] = []
        self.since = 0.0

    def __call__(self, message: Message) -> None:
        # A message passes the hook at every widget it bubbles through: keep the first.
        if isinstance(message, (events.Key, PagedTable.PageLoaded)) and not any(
            m is message for m, _ in self.messages
        ):
            self.messages.append((message, time.perf_counter()))

    def clear(self) -> None:
        """Look only at what comes from now on (what came before still counts as seen)."""
        self.since = time.perf_counter()

    def _recent(self) -> list[tuple[Message, float]]:
        return [(m, at) for m, at in self.messages if at >= self.since]

    def key(self, name: str) -> float:
        return next(at for m, at in self._recent() if isinstance(m, events.Key) and m.key == name)

    def page(self, table: PagedTable, number: int) -> float | None:
        return next(
            (
                at
                for m, at in self._recent()
                if isinstance(m, PagedTable.PageLoaded) and m.table is table and m.page == number
            ),
            None,
        )

    def pages(self, table: PagedTable) -> list[PagedTable.PageLoaded]:
        return [
            m
            for m, _ in self._recent()
            if isinstance(m, PagedTable.PageLoaded) and m.table is table
        ]


async def measure(url: str, key: str, pages: int) -> None:
    print("goal: first page < 300 ms; times from the key reaching the console")
    seen = Seen()
    app = ConsoleApp(ApiClient(url, key))
    async with app.run_test(size=(120, 40), message_hook=seen) as pilot:
        users = app.query_one("#users-table", PagedTable)
        while not users.loaded:
            await pilot.pause(0.01)
        meter = StallMeter()
        for tab, table_id in TABS:
            table = app.query_one(f"#{table_id}", PagedTable)
            # Users are on screen since sign-in: their first page is timed on refresh.
            first = await first_page(pilot, table, seen, (tab, "r") if table.loaded else (tab,))
            meter.start()
            for page in range(2, pages + 2):
                await pilot.press("ctrl+end")
                while not seen.page(table, page):
                    await pilot.pause(0.001)
            stall = meter.stop()
            loads = seen.pages(table)
            later = sorted(m.seconds * 1000 for m in loads if m.page > 1)
            rows = table.row_count
            again = await first_page(pilot, table, seen, ("ctrl+home", "r"))
            print(
                f"{table_id.removesuffix('-table'):>7}: first page {first * 1000:4.0f} ms"
                f" (request to rows {loads[0].seconds * 1000:3.0f} ms), refreshed"
                f" {again * 1000:4.0f} ms · next {len(later)} pages: median"
                f" {later[len(later) // 2]:4.0f} ms, slowest {later[-1]:4.0f} ms"
                f" ({rows:,} of {table.total:,} rows) · longest event-loop stall"
                f" {stall * 1000:3.0f} ms"
            )
        app.exit()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--port", type=int, default=18930)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data or Path(scratch) / "data"
        key = await fill(Config(data_dir=data_dir), args.count)
        proc = await serve(data_dir, args.port)
        try:
            await measure(f"http://127.0.0.1:{args.port}", key, args.pages)
        finally:
            proc.terminate()
            await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())

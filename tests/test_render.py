"""READMEs and file views render off the event loop, within a time budget, and are cached."""

from __future__ import annotations

import asyncio
import html
import multiprocessing
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amphub.http.keys import HUB
from amphub.services.hub import Hub as ServerHub
from tests.conftest import Hub, push, push_readme, running_hub

# Each of these takes Markdown or Pygments from 15 s to minutes on this kind of machine.
SLOW_README = "![" * 500_000
SLOW_FILE = "<!" * 131_000
WORKER = "amphub worker"  # the name of a render process
# A hang guard on a loaded machine, not a speed check: without the budget it is minutes.
PAGE_SECONDS = 15
# Another request waits for no render; a loop held by one waits for all of it.
OTHER_SECONDS = 1.0


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", render_seconds=1) as running:
        await running.space_and_model("team", "m1", visibility="public")
        yield running


def server_hub(hub: Hub) -> ServerHub:
    assert hub.server is not None
    return hub.server.app[HUB]


async def view_meanwhile(hub: Hub, path: str) -> tuple[str, float, float]:
    """An anonymous view of `path`: its page, its seconds, and the slowest API call meanwhile."""
    start = time.monotonic()
    view = asyncio.ensure_future(hub.call("GET", path, user=""))
    slowest = 0.0
    while not view.done():
        asked = time.monotonic()
        status, _ = await hub.call("GET", "/api/v1/me")
        assert status == 200
        slowest = max(slowest, time.monotonic() - asked)
        await asyncio.sleep(0.05)
    status, body = await view
    assert status == 200, body
    return body, time.monotonic() - start, slowest


async def test_a_readme_too_slow_to_render_is_shown_plain_and_holds_nobody(
    hub: Hub, tmp_path: Path
):
    await push_readme(hub, tmp_path, "team", "m1", SLOW_README)
    same_time = asyncio.ensure_future(hub.call("GET", "/team/m1", user=""))
    body, seconds, slowest = await view_meanwhile(hub, "/team/m1")
    assert seconds < PAGE_SECONDS
    assert slowest < OTHER_SECONDS
    assert "took longer than 1 s to render; it is shown as plain text" in body
    assert '<pre class="plain">![![![' in body
    assert "took longer than 1 s" in (await same_time)[1]
    pool = server_hub(hub).render_pool
    assert pool.timeouts == 1  # the two views at once waited for one render
    # The verdict is kept: the next view does not spend the budget again.
    status, again = await hub.call("GET", "/team/m1", user="")
    assert status == 200 and "took longer than 1 s" in again
    assert pool.timeouts == 1


async def test_a_file_too_slow_to_highlight_is_shown_plain_and_holds_nobody(
    hub: Hub, tmp_path: Path
):
    await push(tmp_path / "work", {"page.html": SLOW_FILE}, clone=hub.remote("team", "m1"))
    body, seconds, slowest = await view_meanwhile(hub, "/team/m1/blob/master/page.html")
    assert seconds < PAGE_SECONDS
    assert slowest < OTHER_SECONDS
    assert "This file took longer than 1 s to render; it is shown as plain text." in body
    assert html.escape("<!<!<!") in body
    # A new worker process takes the next file.
    await push(tmp_path / "work", {"small.py": "x = 1\n"})
    status, body = await hub.call("GET", "/team/m1/blob/master/small.py", user="")
    assert status == 200 and '<span class="n">x</span>' in body


async def test_a_render_whose_process_dies_is_shown_plain_and_tried_again(hub: Hub, tmp_path: Path):
    await push_readme(hub, tmp_path, "team", "m1", SLOW_README)
    view = asyncio.ensure_future(hub.call("GET", "/team/m1", user=""))
    while not (workers := [p for p in multiprocessing.active_children() if p.name == WORKER]):
        await asyncio.sleep(0.01)
    workers[0].kill()  # as the kernel's out-of-memory killer would
    status, body = await view
    assert status == 200
    assert "This README could not be rendered; it is shown as plain text." in body
    status, body = await hub.call("GET", "/team/m1", user="")
    assert status == 200 and "took longer than 1 s to render" in body


async def test_a_file_over_the_highlight_cap_is_shown_plain_with_a_note(hub: Hub, tmp_path: Path):
    await push(tmp_path / "work", {"big.py": "x = 1\n" * 50_000}, clone=hub.remote("team", "m1"))
    status, body = await hub.call("GET", "/team/m1/blob/master/big.py", user="")
    assert status == 200
    assert "This file is larger than 256 KiB, so it is shown as plain text." in body
    assert '<pre class="plain">x = 1\n' in body
    assert server_hub(hub).rendered.misses == 0  # not even sent to be rendered


async def test_a_readme_renders_once_and_comes_from_the_cache_after(hub: Hub, tmp_path: Path):
    await push_readme(hub, tmp_path, "team", "m1", "# Hello\n\nSome *text*, [a file](a.txt).\n")
    rendered = server_hub(hub).rendered
    for _ in range(2):
        status, body = await hub.call("GET", "/team/m1", user="")
        assert status == 200
        assert "<em>text</em>" in body
        assert 'href="/team/m1/blob/' in body
        assert "plain text" not in body
    assert (rendered.misses, rendered.hits) == (1, 1)

"""READMEs and file views rendered off the event loop, each within a time budget.

Markdown and highlighting are pure Python, and some inputs take them minutes (a README of
`![![![…`); run on the event loop they would hold every other request meanwhile. So they
run in worker processes of their own (not the scan's, whose jobs are long): one past
`render_seconds` is killed, and the page shows the text as it is, with a note. Text past
a size cap is not rendered at all. Each result, a too-slow one included (so a bad README
costs its budget once), is kept by a hash of the text and what else shapes the HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable

from markupsafe import Markup

from amphub.services.hub import Hub
from amphub.services.worker_processes import JobFailed, WorkerProcesses
from amphub.units import human_size
from amphub.web import render

log = logging.getLogger("amphub")


@contextlib.asynccontextmanager
async def render_processes(hub: Hub) -> AsyncIterator[None]:
    """Processes for rendering, so that no README or file holds the server's event loop."""
    hub.render_pool = WorkerProcesses(hub.config.workers, hub.run_blocking)
    try:
        yield
    finally:
        await hub.render_pool.close()


async def readme_html(hub: Hub, text: str, files: str, raw: str) -> Markup:
    """A README's Markdown as HTML (see `render.markdown`), or as plain text with a note."""
    if not text:
        return Markup("")
    return await _rendered(hub, "README", render.MARKDOWN_LIMIT, render.markdown, text, files, raw)


async def code_html(hub: Hub, name: str, text: str) -> Markup:
    """A file highlighted for its name, or as plain text with a note."""
    return await _rendered(hub, "file", render.HIGHLIGHT_LIMIT, render.highlighted, text, name)


async def _rendered(
    hub: Hub, what: str, limit: int, work: Callable[..., str], text: str, *options: str
) -> Markup:
    """`work(text, *options)` from the cache, or rendered once however many views ask at once."""
    if len(text) > limit:
        note = f"This {what} is larger than {human_size(limit)}, so it is shown as plain text."
        return render.plain(text, note)
    digest = hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()
    key = (work.__name__, digest, *options)
    html = hub.rendered.get(key)
    if html is None:
        running = hub.rendering.get(key)
        if running is None:
            running = asyncio.ensure_future(_render(hub, what, key, work, text, *options))
            hub.rendering[key] = running
            running.add_done_callback(lambda _: hub.rendering.pop(key, None))
        # A view that goes away leaves the render to the others.
        html = await asyncio.shield(running)
    return Markup(html)


async def _render(
    hub: Hub, what: str, key: tuple[str, ...], work: Callable[..., str], text: str, *options: str
) -> str:
    seconds = hub.config.render_seconds
    try:
        html = await hub.render_pool.run(seconds, work, text, *options)
    except TimeoutError:
        note = f"This {what} took longer than {seconds} s to render; it is shown as plain text."
        html = render.plain(text, note)
    except JobFailed as exc:  # not kept: the next view tries again
        log.warning("rendering a %s failed: %s", what, exc)
        return render.plain(text, f"This {what} could not be rendered; it is shown as plain text.")
    hub.rendered.put(key, html, len(html))
    return html

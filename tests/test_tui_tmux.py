"""The console in a real terminal (tmux) at 80x24, against `amphub serve`: what a person sees."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import TUI_DEADLINE, free_port, read_until, start_server

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


async def tmux(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "tmux", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def screen_shows(session: str, text: str) -> str:
    """The screen once it shows `text`."""
    deadline = asyncio.get_running_loop().time() + TUI_DEADLINE
    while True:
        shown = await tmux("capture-pane", "-p", "-t", session)
        if text in shown:
            return shown
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the screen never showed {text!r}:\n{shown}")
        await asyncio.sleep(0.2)


async def screen_lost(session: str, text: str) -> None:
    """Wait until the screen no longer shows `text`."""
    deadline = asyncio.get_running_loop().time() + TUI_DEADLINE
    while text in await tmux("capture-pane", "-p", "-t", session):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the screen still shows {text!r}")
        await asyncio.sleep(0.2)


async def test_a_refused_form_stays_open_and_help_lists_the_keys(tmp_path: Path):
    port = free_port()
    server = await start_server(tmp_path / "data", port)
    session = f"amphub-{uuid.uuid4().hex[:8]}"
    try:
        lines = await read_until(server, "listening on")
        key = next(line.split(": ", 1)[1] for line in lines if line.startswith("administrator key"))
        command = f"{sys.executable} -m amphub tui --url http://127.0.0.1:{port}"
        env = {"AMPHUB_KEY": key, "TERM": "xterm-256color", "HOME": str(tmp_path)}
        env["PATH"] = os.environ["PATH"]
        settings = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        await tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", *settings, command)
        await screen_shows(session, "admin (administrator)")
        await tmux("send-keys", "-t", session, "n")
        await screen_shows(session, "New user")
        await tmux("send-keys", "-t", session, "admin", "Enter")
        shown = await screen_shows(session, "409 conflict: user admin exists already")
        assert "New user" in shown  # still open: the next keys go to the form
        await tmux("send-keys", "-t", session, "a", "d")
        shown = await screen_shows(session, "adminad")
        assert "is now administrator" not in shown and "is now disabled" not in shown
        assert "ctrl+s: Create user" in shown and "^s Create user" in shown
        # Alone: an escape followed at once by a key reads as alt+key.
        await tmux("send-keys", "-t", session, "Escape")
        await screen_lost(session, "New user")
        await tmux("send-keys", "-t", session, "?")
        shown = await screen_shows(session, "Users tab")
        assert "Keys" in shown
        await tmux("send-keys", "-t", session, "Escape")
        await tmux("send-keys", "-t", session, "C-q")
    finally:
        await tmux("kill-session", "-t", session) if session in await tmux("ls") else None
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)

"""The real command line: the admin commands in this process, serve as a subprocess.

The admin commands run `amphub.cli.main(argv)` here, their output read with capsys;
what needs a process of its own (serve, its signals, a busy port, settings read at
start) runs `python -m amphub`.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from amphub import __version__ as amphub_version
from amphub.cli import main
from amphub.config import SETTINGS
from tests.conftest import free_port, start_hub, start_server

USER_RULE = (
    "a user name is 1 to 39 characters of lowercase letters a-z, digits, '.', '_' and '-',"
    " starting with a letter or digit"
)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def amphub(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run the command line in this process: its exit status and what it printed."""
    returncode = main(list(args))
    out, err = capsys.readouterr()
    return Result(returncode, out, err)


async def amphub_process(*args: str, cwd: Path) -> Result:
    """Run `python -m amphub ARGS` as a subprocess."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "amphub", *args),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return Result(proc.returncode, out.decode(), err.decode())


def last_line(out: str) -> str:
    return out.rstrip("\n").split("\n")[-1]


def assert_clean_failure(result: Result, message: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"amphub: {message}"


async def whoami(data_dir: Path, *credentials: tuple[str, str]) -> list[tuple[int, dict]]:
    """GET /api/v1/me with each (user, key) as Basic credentials, on a hub on the data dir."""
    server, _ = await start_hub(data_dir)
    answers = []
    try:
        async with aiohttp.ClientSession() as session:
            for user, key in credentials:
                basic = base64.b64encode(f"{user}:{key}".encode()).decode()
                url = str(server.make_url("/api/v1/me"))
                async with session.get(url, headers={"Authorization": f"Basic {basic}"}) as resp:
                    answers.append((resp.status, await resp.json()))
    finally:
        await server.close()
    return answers


def test_create_user_prints_a_working_key(tmp_path, capsys):
    data = str(tmp_path / "data")
    ada = amphub(capsys, "admin", "create-user", "ada", "--creator", "--data", data, "--init")
    assert ada.returncode == 0, ada.stderr
    root = amphub(capsys, "admin", "create-user", "root", "--admin", "--data", data)
    assert root.returncode == 0, root.stderr
    keys = [last_line(ada.stdout), last_line(root.stdout)]
    for key in keys:
        assert key.startswith("amp_") and " " not in key
    (status, me), (root_status, root_me) = asyncio.run(
        whoami(tmp_path / "data", ("ada", keys[0]), ("root", keys[1]))
    )
    assert (status, me["name"], me["admin"], me["creator"]) == (200, "ada", False, True)
    assert (root_status, root_me["admin"], root_me["creator"]) == (200, True, False)


def test_create_user_duplicate_and_invalid_name_fail_cleanly(tmp_path, capsys):
    data, other = str(tmp_path / "data"), str(tmp_path / "other")
    first = amphub(capsys, "admin", "create-user", "ada", "--data", data, "--init")
    invalid = amphub(capsys, "admin", "create-user", "Bad Name", "--data", other, "--init")
    assert first.returncode == 0, first.stderr
    assert_clean_failure(invalid, f"invalid user name 'Bad Name': {USER_RULE}")
    assert_clean_failure(
        amphub(capsys, "admin", "create-user", "ada", "--admin", "--data", data),
        "user ada exists already",
    )
    # The first key and roles are untouched by the refused duplicate.
    [(status, me)] = asyncio.run(whoami(tmp_path / "data", ("ada", last_line(first.stdout))))
    assert (status, me["admin"]) == (200, False)


def test_reset_key_and_grant_creator(tmp_path, capsys):
    data = str(tmp_path / "data")
    created = amphub(capsys, "admin", "create-user", "ada", "--data", data, "--init")
    unknown = [
        amphub(capsys, "admin", "reset-key", "nobody", "--data", data),
        amphub(capsys, "admin", "grant-creator", "nobody", "--data", data),
    ]
    for result in unknown:
        assert_clean_failure(result, "no user nobody")
    old = last_line(created.stdout)
    reset = amphub(capsys, "admin", "reset-key", "ada", "--data", data)
    assert reset.returncode == 0, reset.stderr
    new = last_line(reset.stdout)
    assert new.startswith("amp_") and new != old
    grant = amphub(capsys, "admin", "grant-creator", "ada", "--data", data)
    assert grant.returncode == 0, grant.stderr

    (old_status, _), (status, me) = asyncio.run(
        whoami(tmp_path / "data", ("ada", old), ("ada", new))
    )
    assert old_status == 401
    assert (status, me["name"], me["creator"]) == (200, "ada", True)


def test_admin_refuses_a_data_dir_that_is_not_one_unless_init(tmp_path, capsys):
    typo = tmp_path / "typo"
    refused = amphub(capsys, "admin", "create-user", "ada", "--data", str(typo))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"amphub: {typo} holds no amphub data (no amphub.db); check --data, or give --init"
        " to start a new data dir there\n"
    )
    assert not typo.exists()
    made = amphub(capsys, "admin", "create-user", "ada", "--data", str(typo), "--init")
    assert made.returncode == 0, made.stderr
    again = amphub(capsys, "admin", "list-users", "--data", str(typo))
    assert (again.returncode, again.stdout.split("\t")[:3]) == (0, ["ada", "-", "enabled"])


def test_list_users_grant_admin_disable_enable(tmp_path, capsys):
    data = str(tmp_path / "data")
    created = amphub(capsys, "admin", "create-user", "ada", "--data", data, "--init")
    amphub(capsys, "admin", "create-user", "bob", "--creator", "--data", data)
    key = last_line(created.stdout)
    said = [
        amphub(capsys, "admin", action, "ada", "--data", data).stdout
        for action in ("grant-admin", "disable")
    ]
    assert said == ["ada is now an administrator\n", "ada is now disabled\n"]
    listed = amphub(capsys, "admin", "list-users", "--data", data).stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [
        ["ada", "admin", "disabled"],
        ["bob", "creator", "enabled"],
    ]
    [(status, _)] = asyncio.run(whoami(tmp_path / "data", ("ada", key)))
    assert status == 403
    enabled = amphub(capsys, "admin", "enable", "ada", "--data", data)
    assert enabled.stdout == "ada is now enabled\n"
    [(status, me)] = asyncio.run(whoami(tmp_path / "data", ("ada", key)))
    assert (status, me["admin"]) == (200, True)
    assert_clean_failure(
        amphub(capsys, "admin", "disable", "nobody", "--data", data), "no user nobody"
    )


def test_version_and_serve_help(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"amphub {amphub_version}\n"
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    assert "AMPHUB_<NAME>" in text and "amphub.toml" in text
    for setting in SETTINGS:
        assert f"AMPHUB_{setting.upper()}" in text
    assert "creates the user admin and prints\nits key once" in text


async def serve(data: Path, port: int) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start `amphub serve` and return it with its stdout lines up to `listening on`."""
    proc = await start_server(data, port, cwd=data.parent, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    try:
        while not (lines and lines[-1].startswith("amphub listening on ")):
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
            if not line:
                err = await proc.stderr.read()
                raise AssertionError(f"amphub serve ended early: {lines}\n{err.decode()}")
            lines.append(line.decode().rstrip("\n"))
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc, lines


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    return proc.returncode, err.decode()


async def me(port: int, key: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {key}"}
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_serve_prints_key_and_restart_keeps_data(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    proc, lines = await serve(data, port)
    try:
        keys = [line.removeprefix("administrator key: ") for line in lines if "key:" in line]
        assert len(keys) == 1 and keys[0].startswith("amp_"), lines
        key = keys[0]
        administrator = lines.index(f"administrator key: {key}")
        assert lines[-1] == f"amphub listening on http://127.0.0.1:{port}"
        assert administrator < len(lines) - 1
        status, body = await me(port, key)
        assert (status, body["name"], body["admin"]) == (200, "admin", True)
    finally:
        returncode, err = await stop(proc)
    assert returncode == 0, err
    assert "Traceback" not in err

    port = free_port()
    proc, lines = await serve(data, port)
    try:
        assert not [line for line in lines if "key" in line], lines
        assert lines[-1] == f"amphub listening on http://127.0.0.1:{port}"
        status, body = await me(port, key)
        assert (status, body["name"]) == (200, "admin")
    finally:
        returncode, err = await stop(proc)
    assert returncode == 0, err


async def test_serve_keeps_its_files_to_itself(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    proc, lines = await serve(data, free_port())
    try:
        assert lines[-1].startswith("amphub listening on"), lines
        modes = {
            path.relative_to(data).as_posix(): path.stat().st_mode & 0o777
            for path in (data, data / "amphub.db", data / "repos")
        }
    finally:
        returncode, err = await stop(proc)
    assert returncode == 0, err
    assert modes == {".": 0o700, "amphub.db": 0o600, "repos": 0o700}


async def test_serve_on_busy_port_fails_cleanly(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await amphub_process(
            "serve", "--data", str(tmp_path / "data"), "--port", str(port), cwd=tmp_path
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"amphub: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AMPHUB_PORT": "eighty"},
            "amphub: AMPHUB_PORT: port must be a whole number, not 'eighty'",
        ),
        ({"AMPHUB_PORT": "70000"}, "amphub: AMPHUB_PORT: port must "),
    ],
)
async def test_bad_setting_is_a_sentence_not_a_traceback(tmp_path, monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # A process of its own: were the setting taken, `serve` would go on serving.
    result = await amphub_process("serve", "--data", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(message)

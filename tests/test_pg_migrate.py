"""`amphub admin migrate-to`: a SQLite hub's metadata copied into PostgreSQL, and served."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from amphub.cli import main
from tests.conftest import git, push, push_readme, read_from_outside, running_hub, wait_task
from tests.test_cli import Result, amphub_process
from tests.test_peers_api import TARGET
from tests.test_shared_state import _sign_in_and_register_zone, _still_valid


async def amphub_with(environ: dict[str, str], *args: str, cwd: Path) -> Result:
    """`python -m amphub ARGS` with settings in its environment."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "amphub",
        *args,
        cwd=cwd,
        env={**os.environ, **environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return Result(proc.returncode, out.decode(), err.decode())


CARD = "---\nlicense: mit\ntags: [otter]\n---\n# Otter\nA model of otters.\n"


async def test_a_sqlite_hub_migrated_to_postgresql_serves_what_it_had(
    tmp_path: Path,
    empty_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    await git("lfs", "install", "--skip-repo")
    data = tmp_path / "data"
    async with running_hub(data) as hub:
        admin_key = hub.admin_key
        ada_key = await hub.user("ada", creator=True)
        await hub.space("team", owner="ada")
        await hub.model("team", "m1", owner="ada")
        await hub.model("team", "m2", owner="ada", visibility="private")
        assert (
            await hub.call(
                "PUT",
                "/api/v1/models/team/m2/members/admin",
                user="ada",
                json={"role": "developer"},
            )
        )[0] in (200, 201, 204)
        work = tmp_path / "m1"
        weights = os.urandom(3000)
        await git("clone", "-q", hub.remote("team", "m1", "ada"), str(work))
        await git("lfs", "track", "*.bin", cwd=work)
        await push(
            work, {"weights.bin": weights, ".gitattributes": (work / ".gitattributes").read_text()}
        )
        await push_readme(hub, tmp_path, "team", "m2", CARD)
        await git("lfs", "lock", "weights.bin", cwd=work)
        _, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "master"})
        await wait_task(hub, task["id"])
        assert (await hub.call("POST", "/api/v1/deploy-targets", json=TARGET))[0] == 201
        browser = await _sign_in_and_register_zone(hub)
    try:
        # Tables are read a page at a time (memory stays bounded): pages of 2 rows here,
        # so that tables take several, one WITHOUT ROWID (keyed by its primary key) too.
        chunks = [("team", "m1", f"{n:064x}", n, "0" * 64, n * 10, 10) for n in range(5)]
        with sqlite3.connect(data / "amphub.db") as conn:
            conn.executemany("INSERT INTO xet_chunks VALUES (?, ?, ?, ?, ?, ?, ?)", chunks)
        monkeypatch.setattr("amphub.db.copy.ROWS_PER_STATEMENT", 2)
        command = ["admin", "migrate-to", empty_database, "--data", str(data)]
        assert await asyncio.to_thread(main, command) == 0
        said = capsys.readouterr().out
        assert "copied 2 rows of models" in said and "copied 1 row of lfs_locks" in said, said
        for table, count in await _row_counts(data):
            assert f"copied {count} {'row' if count == 1 else 'rows'} of {table}\n" in said
        again = await amphub_process(
            "admin", "migrate-to", empty_database, "--data", str(data), cwd=tmp_path
        )
        assert again.returncode == 1
        assert "the target database holds amphub data already" in again.stderr

        async with running_hub(data, database=empty_database) as hub:
            hub.admin_key = admin_key
            hub.keys["ada"] = ada_key
            assert (await hub.call("GET", "/api/v1/me", user="ada"))[1]["name"] == "ada"
            clone = tmp_path / "clone"
            await git("clone", "-q", hub.remote("team", "m1", "ada"), str(clone))
            assert (clone / "weights.bin").read_bytes() == weights
            status, found = await hub.call("GET", "/api/v1/models?" + urlencode({"q": "otter"}))
            assert status == 200
            assert [m["id"] for m in found["models"]] == ["m2"], found
            _, later = await hub.call(
                "POST", "/api/v1/models/team/m1/scans", json={"ref": "master"}
            )
            assert later["id"] > task["id"]
            await wait_task(hub, later["id"])
            _, members = await hub.call("GET", "/api/v1/models/team/m2/members", user="ada")
            assert members["members"] == [
                {"user": "ada", "role": "owner"},
                {"user": "admin", "role": "developer"},
            ]
            await _still_valid(hub, browser)  # the signing secret came along
            _, targets = await hub.call("GET", "/api/v1/deploy-targets")
            assert [t["name"] for t in targets["targets"]] == ["serving"]
            locks = (await git("lfs", "locks", cwd=clone)).stdout
            assert "weights.bin" in locks and "ada" in locks
    finally:
        await browser.close()
    assert await read_from_outside(empty_database, "SELECT count(*) FROM lfs_locks") == [(1,)]
    copied = 'SELECT space_id, model_id, xorb, chunk, oid, "offset", length FROM xet_chunks'
    assert await read_from_outside(empty_database, copied + " ORDER BY chunk") == chunks


async def _row_counts(data: Path) -> list[tuple[str, int]]:
    """Each copied table of a data dir's SQLite database and its number of rows."""
    with sqlite3.connect(data / "amphub.db") as conn:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith(("sqlite_", "cards_fts", "search_"))
        ]
        return [(t, conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables]


def test_migrate_to_refuses_a_hub_whose_database_is_postgresql_already(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("AMPHUB_DATABASE", "postgresql://nobody@127.0.0.1:9/hub")
    target = "postgresql://nobody@127.0.0.1:9/other"
    assert main(["admin", "migrate-to", target, "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "amphub: migrate-to copies a hub whose database is SQLite\n"

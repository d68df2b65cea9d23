"""Scan verdicts where people decide: per viewed ref, beside task status, in trees and HF.

What the pages show is read from these API answers (the pages' own look is checked in
tests/test_web_browser.py).
"""

from __future__ import annotations

import asyncio
import os
import pickle
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.conftest import Hub, git, push, wait_task

TOKEN = "gh" + "p_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(autouse=True)
async def lfs_installed() -> None:
    await git("lfs", "install", "--skip-repo")


async def scan(hub: Hub, ref: str) -> dict:
    status, task = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": ref})
    assert status == 201, task
    done = await wait_task(hub, task["id"])
    assert done["status"] == "succeeded", done
    return done


async def master_scan(hub: Hub) -> dict:
    _, model = await hub.call("GET", "/api/v1/models/team/m1")
    return model["master_scan"]


async def test_the_verdict_is_that_of_the_ref_viewed(hub: Hub, model_repo, tmp_path: Path):
    remote = hub.remote("team", "m1")
    work = tmp_path / "w"
    await push(work, {"one.pkl": pickle.dumps(Evil())}, clone=remote, tag="v1.0")
    await push(work, {"two.pkl": pickle.dumps(Evil())}, clone=remote)
    assert (await master_scan(hub))["state"] == "not_scanned"

    on_master = await scan(hub, "master")
    assert on_master["verdict"] == "unsafe"  # beside the status, in the tasks API
    await scan(hub, "v1.0")  # finishes last, and found one unsafe file only
    shown = await master_scan(hub)
    assert shown["state"] == "scanned" and shown["task"] == on_master["id"]
    assert shown["status"] == "unsafe" and shown["counts"]["unsafe"] == 2

    await push(work, {"notes.txt": b"hello\n"}, clone=remote)
    shown = await master_scan(hub)
    assert shown["state"] == "outdated" and shown["scanned_commit"] == on_master["commit"]
    assert shown["commit"] != on_master["commit"] and shown["status"] == "unsafe"

    _, tasks = await hub.call("GET", "/api/v1/tasks")
    assert {t["verdict"] for t in tasks["tasks"]} == {"unsafe"}


async def test_history_findings_and_folder_summaries_in_trees(hub: Hub, model_repo, tmp_path):
    remote = hub.remote("team", "m1")
    work = tmp_path / "w"
    # The secret was in an earlier version, under the file's old name.
    settings = "".join(f"SETTING_{i} = {i}\n" for i in range(12))
    await push(work, {"src/settings.py": f'TOKEN = "{TOKEN}"\n{settings}'}, clone=remote)
    renamed = await push(work, {"src/settings.py": f"TOKEN = None\n{settings}"})
    await git("mv", "src/settings.py", "src/config.py", cwd=work)
    await push(
        work,
        {
            "src/config.py": f'import os\nTOKEN = os.environ["TOKEN"]\n{settings}',
            "weights/evil.pkl": pickle.dumps(Evil()),
            "weights/fine.pkl": pickle.dumps({"w": [1.0]}),
        },
        clone=remote,
    )
    await scan(hub, "master")

    _, top = await hub.call("GET", "/api/v1/models/team/m1/tree/master")
    folders = {e["path"]: e["scan"] for e in top["entries"] if e["type"] == "directory"}
    assert folders["weights"] == {"status": "unsafe", "counts": {"unsafe": 1}}
    assert folders["src"] == {"status": "unsafe", "counts": {"unsafe": 1}}
    _, src = await hub.call("GET", "/api/v1/models/team/m1/tree/master/src")
    (config,) = src["entries"]
    assert config["scan"]["status"] == "unsafe"  # the file itself is clean now
    (earlier,) = config["scan"]["history"]
    assert earlier["findings"][0]["kind"] == "secret" and TOKEN not in str(earlier)
    assert earlier["commit"] != renamed and earlier["path"] == "src/settings.py"
    # The file's page links that version under the name it had then.
    link = f"/team/m1/blob/{earlier['commit']}/src/settings.py"
    auth = {"Authorization": f"Bearer {hub.admin_key}"}
    file_page = f"{hub.base}/team/m1/blob/master/src/config.py"
    async with hub.session.get(file_page, headers=auth) as page:
        assert page.status == 200 and f'href="{link}"' in await page.text()
    async with hub.session.get(hub.base + link, headers=auth) as page:
        assert page.status == 200 and "settings" in await page.text()

    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    listed = await asyncio.to_thread(
        lambda: list(api.list_repo_tree("team/m1", "src", expand=True))
    )
    (file,) = listed
    assert file.security.status == "unsafe"  # securityFileStatus
    status, raw = await hub.call("GET", "/api/models/team/m1/tree/master/src?expand=true")
    assert status == 200, raw
    assert raw[0]["securityFileStatus"]["history"][0]["findings"][0]["kind"] == "secret"

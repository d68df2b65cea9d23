"""The task queue and the scan task, with a real server, real git and git-lfs."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
from pathlib import Path

import aiohttp
import pytest

from amphub.config import Config
from tests.conftest import (
    Hub,
    ServerProcess,
    free_port,
    git,
    push,
    read_from_outside,
    read_until,
    start_server,
    wait_task,
    write_from_outside,
)

TOKEN = "gh" + "p_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(autouse=True)
async def lfs_installed() -> None:
    """Large files go to LFS in the clones these tests push from."""
    await git("lfs", "install", "--skip-repo")


async def scan(hub: Hub, model: str = "m1", ref: str = "master", user: str = "admin") -> dict:
    status, task = await hub.call(
        "POST", f"/api/v1/models/team/{model}/scans", user=user, json={"ref": ref}
    )
    assert status == 201, task
    return task


async def test_scan_finds_a_harmful_pickle_and_shows_it_everywhere(hub, model_repo, tmp_path):
    files = {
        "model.pkl": pickle.dumps(Evil(), protocol=2),
        "weights.pkl": pickle.dumps({"layer": [1.0, 2.0]}, protocol=4),
        "notes.txt": b"hello\n",
    }
    await push(tmp_path / "w-m1", files, clone=hub.remote("team", "m1"))
    task = await scan(hub)
    assert task["kind"] == "scan" and task["status"] in ("queued", "running")
    assert len(task["commit"]) == 40
    done = await wait_task(hub, task["id"])
    assert done["status"] == "succeeded", done
    result = done["result"]["files"]
    assert result["model.pkl"]["status"] == "unsafe"
    imports = result["model.pkl"]["pickleImportScan"]["pickleImports"]
    assert {"module": "posix", "name": "system", "safety": "dangerous"} in imports or {
        "module": "os",
        "name": "system",
        "safety": "dangerous",
    } in imports
    assert result["weights.pkl"]["status"] == "safe"
    assert done["result"]["summary"]["status"] == "unsafe"

    _, tree = await hub.call("GET", "/api/v1/models/team/m1/tree/master")
    entries = {e["path"]: e for e in tree["entries"]}
    assert entries["model.pkl"]["lfs"] and entries["model.pkl"]["scan"]["status"] == "unsafe"
    assert entries["notes.txt"]["scan"]["status"] == "safe"
    _, model = await hub.call("GET", "/api/v1/models/team/m1")
    assert model["scan"]["status"] == "unsafe" and model["scan"]["task"] == task["id"]


async def test_a_second_scan_only_scans_new_content(hub, model_repo, tmp_path):
    await push(
        tmp_path / "w-m1",
        {f"f{i}.txt": f"file {i}\n".encode() for i in range(5)},
        clone=hub.remote("team", "m1"),
    )
    first = await wait_task(hub, (await scan(hub))["id"])
    assert first["result"]["files"]["f0.txt"]["status"] == "safe"
    target = hub.database_target
    marker = '{"status": "suspicious", "findings": [], "marker": true}'
    [(before,)] = await read_from_outside(target, "SELECT count(*) FROM scan_results")
    await write_from_outside(target, ("UPDATE scan_results SET verdict = ?", (marker,)))
    await push(tmp_path / "w-m1", {"new.txt": b"new\n"}, clone=hub.remote("team", "m1"))
    second = await wait_task(hub, (await scan(hub))["id"])
    files = second["result"]["files"]
    assert files["f0.txt"].get("marker") is True  # reused, not scanned again
    assert files["new.txt"]["status"] == "safe" and "marker" not in files["new.txt"]
    assert await read_from_outside(target, "SELECT count(*) FROM scan_results") == [(before + 1,)]


async def test_secret_removed_from_a_file_is_still_found_in_history(hub, model_repo, tmp_path):
    await push(
        tmp_path / "w-m1",
        {"config.py": f'TOKEN = "{TOKEN}"\n'.encode()},
        clone=hub.remote("team", "m1"),
    )
    await push(
        tmp_path / "w-m1",
        {"config.py": b'import os\nTOKEN = os.environ["TOKEN"]\n'},
        clone=hub.remote("team", "m1"),
    )
    done = await wait_task(hub, (await scan(hub))["id"])
    verdict = done["result"]["files"]["config.py"]
    assert verdict["status"] == "unsafe"
    (earlier,) = verdict["history"]
    (finding,) = earlier["findings"]
    assert finding["kind"] == "secret" and TOKEN not in str(finding)


async def test_scan_of_an_unknown_ref_is_refused(hub, model_repo):
    status, body = await hub.call("POST", "/api/v1/models/team/m1/scans", json={"ref": "nope"})
    assert status == 400 and "no branch, tag or commit nope" in body["error"]["message"]


async def test_an_anonymous_caller_cannot_start_a_scan_of_a_public_model(hub):
    await hub.space_and_model("team", "open", visibility="public")
    status, body = await hub.call("POST", "/api/v1/models/team/open/scans", user="", json={})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, listed = await hub.call("GET", "/api/v1/tasks?model=team/open")
    assert status == 200 and listed["tasks"] == []


async def test_task_visibility_and_cancel_rights(hub, model_repo, tmp_path):
    await hub.user("eve")
    await hub.user("dev")
    await hub.call("PUT", "/api/v1/models/team/m1/members/dev", json={"role": "developer"})
    task = await scan(hub)
    await wait_task(hub, task["id"])
    assert (await hub.call("GET", f"/api/v1/tasks/{task['id']}", user="eve"))[0] == 404
    assert (await hub.call("GET", f"/api/v1/tasks/{task['id']}", user=""))[0] == 401
    assert (await hub.call("GET", "/api/v1/tasks", user="eve"))[1]["tasks"] == []
    listed = (await hub.call("GET", "/api/v1/tasks?kind=scan&model=team/m1", user="dev"))[1]
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    second = await scan(hub)
    status, body = await hub.call("POST", f"/api/v1/tasks/{second['id']}/cancel", user="dev")
    assert status == 403
    finished = await wait_task(hub, second["id"])
    status, body = await hub.call("POST", f"/api/v1/tasks/{second['id']}/cancel")
    assert status == 400 and f"has {finished['status']} already" in body["error"]["message"]


async def test_a_visitor_sees_a_scans_summary_but_no_file_names(hub, model_repo, tmp_path):
    await hub.user("vis")
    await hub.call("PUT", "/api/v1/models/team/m1/members/vis", json={"role": "visitor"})
    await push(tmp_path / "w", {"secret-plans.txt": b"hello\n"}, clone=hub.remote("team", "m1"))
    task = await scan(hub)
    done = await wait_task(hub, task["id"])
    assert "secret-plans.txt" in done["result"]["files"]
    assert (await hub.call("GET", "/api/v1/models/team/m1/tree/master", user="vis"))[0] == 403
    seen = (await hub.call("GET", f"/api/v1/tasks/{task['id']}", user="vis"))[1]
    listed = (await hub.call("GET", "/api/v1/tasks?model=team/m1", user="vis"))[1]["tasks"]
    for answer in (seen, listed[0]):
        assert answer["result"]["summary"] == done["result"]["summary"]
        assert "secret-plans" not in str(answer)


async def test_tasks_go_with_their_model(hub, model_repo, tmp_path):
    await push(tmp_path / "w", {"notes.txt": b"hello\n"}, clone=hub.remote("team", "m1"))
    old = await wait_task(hub, (await scan(hub))["id"])
    status, _ = await hub.call("DELETE", "/api/v1/models/team/m1")
    assert status in (200, 202, 204)
    await hub.model("team", "m1")
    assert (await hub.call("GET", f"/api/v1/tasks/{old['id']}"))[0] == 404
    listed = (await hub.call("GET", "/api/v1/tasks?model=team/m1"))[1]["tasks"]
    assert listed == []
    status, model = await hub.call("GET", "/api/v1/models/team/m1")
    assert status == 200 and model["scan"] is None


async def test_cancel_a_running_scan(hub, model_repo, tmp_path):
    await push(
        tmp_path / "w-m1",
        {f"d/f{i}.txt": os.urandom(8).hex().encode() for i in range(300)},
        clone=hub.remote("team", "m1"),
    )
    task = await scan(hub)
    await wait_task(hub, task["id"], until=("running", "succeeded"))
    status, body = await hub.call("POST", f"/api/v1/tasks/{task['id']}/cancel")
    assert status == 200
    done = await wait_task(hub, task["id"])
    assert done["status"] == "canceled", done
    assert done["finished_at"] and done["progress"] < 100


def running(pid: int) -> bool:
    """Whether a process exists and has not exited (a zombie waits only to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def scan_processes_of(server: int) -> list[int]:
    """The scan processes a server has started, once it has started one."""
    for _ in range(600):
        children = [
            int(pid)
            for thread in Path(f"/proc/{server}/task").iterdir()
            for pid in (thread / "children").read_text().split()
        ]
        workers = [
            pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        if workers:
            return workers
        await asyncio.sleep(0.05)
    raise AssertionError("the server started no scan process")


def target_of(data: Path, database: str) -> Path | str:
    """Where a server on `data` with this `database` setting keeps its metadata."""
    return Config(data_dir=data, database=database).database_target


async def test_scan_resumes_after_kill_9(tmp_path, database):
    server = ServerProcess(tmp_path / "data", AMPHUB_DATABASE=database)
    await server.start()
    async with aiohttp.ClientSession() as session:
        hub = Hub(None, session, server.key, server.data, url=server.url)
        await hub.space_and_model("team", "m1")
        dense = pickle.dumps([(i, str(i)) for i in range(1_500_000)], protocol=4)
        await push(
            tmp_path / "w-m1",
            {"big.pkl": dense, **{f"t{i}.txt": b"x" for i in range(50)}},
            clone=hub.remote("team", "m1"),
        )
        task = await scan(hub)
        await wait_task(hub, task["id"], until=("running",))
        workers = await scan_processes_of(server.pid)
        # The scan processes end with the server: until they do they hold its output open.
        await server.kill()
        assert not [pid for pid in workers if running(pid)]
        await server.start()
        done = await wait_task(hub, task["id"])
        assert done["status"] == "succeeded", done
        assert done["result"]["files"]["big.pkl"]["status"] == "safe"
    await server.stop()
    target = target_of(server.data, database)
    sql = "SELECT attempts FROM tasks WHERE id = ?"
    assert await read_from_outside(target, sql, task["id"]) == [(2,)]


async def test_a_scan_restarted_after_kill_9_keeps_what_it_had_judged(tmp_path, database):
    server = ServerProcess(tmp_path / "data", AMPHUB_DATABASE=database)
    await server.start()
    async with aiohttp.ClientSession() as session:
        hub = Hub(None, session, server.key, server.data, url=server.url)
        await hub.space_and_model("team", "m1")
        for version in range(3):
            texts = {f"a{i}.txt": f"file {i} version {version}\n".encode() for i in range(5)}
            await push(tmp_path / "w-m1", texts, clone=hub.remote("team", "m1"))
        # Scanned after the text files and slowly: the server is killed while it runs.
        dense = pickle.dumps([(i, str(i)) for i in range(1_500_000)], protocol=4)
        await push(tmp_path / "w-m1", {"big.pkl": dense}, clone=hub.remote("team", "m1"))
        task = await scan(hub)
        deadline = asyncio.get_running_loop().time() + 60
        while (await hub.call("GET", f"/api/v1/tasks/{task['id']}"))[1]["message"] != (
            "scanning big.pkl"
        ):
            assert asyncio.get_running_loop().time() < deadline, "the scan never reached big.pkl"
            await asyncio.sleep(0.02)
        await server.kill()
        # What was judged before the kill is marked: a restarted scan that judged it again
        # would not show the marker.
        marker = {"kind": "secret", "message": "judged before the kill", "severity": "dangerous"}
        verdict = json.dumps({"status": "suspicious", "findings": [marker]})
        target = target_of(server.data, database)
        [(judged,)] = await read_from_outside(target, "SELECT count(*) FROM scan_results")
        await write_from_outside(target, ("UPDATE scan_results SET verdict = ?", (verdict,)))
        await server.start()
        done = await wait_task(hub, task["id"])
    await server.stop()
    assert done["status"] == "succeeded", done
    files = done["result"]["files"]
    # Each text file now and in its two earlier versions, .gitattributes and README.md.
    assert judged == 5 * 3 + 2
    for i in range(5):
        assert files[f"a{i}.txt"]["findings"] == [marker]
        assert [entry["findings"] for entry in files[f"a{i}.txt"]["history"]] == [[marker]] * 2
    assert files["big.pkl"]["status"] == "safe" and files["big.pkl"]["findings"] == []


async def test_a_task_interrupted_three_times_fails(tmp_path, database):
    data, port = tmp_path / "data", free_port()
    environ = {**os.environ, "AMPHUB_DATABASE": database}
    proc = await start_server(data, port, env=environ)
    await read_until(proc, "listening")
    proc.terminate()
    await proc.wait()
    target = target_of(data, database)
    # A scan that was running when the server died for the third time.
    insert = (
        "INSERT INTO tasks (kind, space_id, model_id, status, attempts, created_by,"
        " created_at) VALUES ('scan', 'team', 'm1', 'running', 3, 'admin', 'x')"
    )
    await write_from_outside(target, (insert, ()))
    proc = await start_server(data, port, env=environ)
    await read_until(proc, "listening")
    proc.terminate()
    await proc.wait()
    [(status, message)] = await read_from_outside(target, "SELECT status, message FROM tasks")
    assert status == "failed"
    assert message == "interrupted 3 times (its node restarted or was lost); not tried again"


async def test_task_list_pages_past_tasks_the_caller_may_not_see(hub, model_repo):
    await hub.user("dev")
    await hub.call("PUT", "/api/v1/models/team/m1/members/dev", json={"role": "developer"})
    mine = await wait_task(hub, (await scan(hub))["id"])
    await hub.model("team", "hidden")
    newer = [await wait_task(hub, (await scan(hub, model="hidden"))["id"]) for _ in range(3)]

    # Three newer tasks dev may not see do not push dev's own task off a page of two.
    listed = (await hub.call("GET", "/api/v1/tasks?limit=2", user="dev"))[1]
    assert [t["id"] for t in listed["tasks"]] == [mine["id"]]
    assert listed["next_before"] is None

    first = (await hub.call("GET", "/api/v1/tasks?limit=2"))[1]
    assert [t["id"] for t in first["tasks"]] == [newer[2]["id"], newer[1]["id"]]
    second = (await hub.call("GET", f"/api/v1/tasks?limit=2&before={first['next_before']}"))[1]
    assert [t["id"] for t in second["tasks"]] == [newer[0]["id"], mine["id"]]
    third = (await hub.call("GET", f"/api/v1/tasks?limit=2&before={second['next_before']}"))[1]
    assert third == {"tasks": [], "next_before": None}
    for bad in ("limit=0", "limit=501", "limit=two", "before=-1"):
        assert (await hub.call("GET", f"/api/v1/tasks?{bad}"))[0] == 400

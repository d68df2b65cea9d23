"""Files through history: earlier versions (for the secret scan) and last commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dulwich.objects import ObjectID
from dulwich.repo import Repo

from amphub.storage.commit_views import commit_changes
from amphub.storage.last_changes import WALK_BUDGET, last_changes
from amphub.storage.repo_files import PathNotFound, earlier_versions, file_entry, file_history
from tests.conftest import commit, git


def per_file_versions(
    path: Path, commit_id: str, file: str, limit: int
) -> list[tuple[str, str, str]]:
    """What the scan used before: one history walk limited to the one file."""
    with Repo(str(path)) as repo:
        seen: set[bytes] = set()
        versions = []
        include = [ObjectID(commit_id.encode())]
        for entry in repo.get_walker(include=include, paths=[file.encode()]):
            try:
                blob_id = file_entry(path, entry.commit.id.decode(), file).sha
            except PathNotFound:
                continue
            assert blob_id is not None
            if blob_id.encode() not in seen:
                seen.add(blob_id.encode())
                versions.append((entry.commit.id.decode(), blob_id, file))
            if len(versions) > limit:
                break
        return versions[1:]


@pytest.fixture
async def history(tmp_path: Path) -> Path:
    """A clone whose history has edits, a revert, a delete and re-add, a folder that became
    a file, branches and merges (one taking a side, one a new content)."""
    work = tmp_path / "work"
    await git("init", "-q", str(work))
    await commit(work, {"a.py": "a = 1\n", "d/b.txt": "b1\n", "c/x.txt": "x\n", "e.md": "e\n"})
    for i in range(2, 8):
        await commit(work, {"a.py": f"a = {i}\n", "d/b.txt": f"b{i % 3}\n"}, f"edit {i}")
    await commit(work, {"a.py": "a = 3\n"}, "revert a.py to an earlier content")
    await git("rm", "-q", "e.md", cwd=work)
    await git("commit", "-q", "-m", "delete e.md", cwd=work)
    await commit(work, {"e.md": "e again\n"}, "add e.md back")
    await git("rm", "-q", "-r", "c", cwd=work)
    await commit(work, {"c": "c is a file now\n"}, "folder c becomes a file")
    await git("checkout", "-q", "-b", "side", cwd=work)
    await commit(work, {"a.py": "a = 'side'\n", "f.txt": "side only\n"}, "side")
    await git("checkout", "-q", "master", cwd=work)
    await commit(work, {"a.py": "a = 'master'\n", "d/b.txt": "b master\n"}, "master")
    await git("merge", "-q", "side", "-X", "ours", "-m", "merge side, keeping ours", cwd=work)
    await git("checkout", "-q", "side", cwd=work)
    await commit(work, {"a.py": "a = 'side 2'\n"}, "side again")
    await git("checkout", "-q", "master", cwd=work)
    await git("merge", "-q", "--no-commit", "-X", "theirs", "side", cwd=work)
    await commit(work, {"a.py": "a = 'merged'\n"}, "merge side with a new content")
    await commit(work, {"d/b.txt": "b last\n", "g.txt": "new\n"}, "last")
    return work


FILES = ["a.py", "c", "d/b.txt", "e.md", "f.txt", "g.txt"]


@pytest.mark.parametrize("limit", [1, 3, 20])
async def test_one_walk_finds_what_a_walk_per_file_found(history, limit):
    head = (await git("rev-parse", "HEAD", cwd=history)).stdout.strip()
    found = earlier_versions(history, head, FILES, limit)
    expected = {file: per_file_versions(history, head, file, limit) for file in FILES}
    assert found.versions == expected
    assert len(found.versions["a.py"]) == min(limit, 10)  # the revert's content counts once
    assert found.versions["c"] == []  # what was a folder has no earlier content


async def test_a_files_history_lists_the_commits_git_log_lists(history):
    """Its deletions too; commits of one second on two branches may come in another order."""
    for file in FILES:
        ours = file_history(history, "master", file, 0, 100)
        listed = await git("log", "--format=%H", "master", "--", file, cwd=history)
        assert sorted(c.id for c in ours) == sorted(listed.stdout.split()), file
        times = [c.committed_at for c in ours]
        assert times == sorted(times, reverse=True), file


async def test_the_history_is_walked_once_for_all_files(history):
    head = (await git("rev-parse", "HEAD", cwd=history)).stdout.strip()
    commits = int((await git("rev-list", "--count", "HEAD", cwd=history)).stdout)
    assert earlier_versions(history, head, FILES, 20).commits == commits
    # The walk stops once every file has as many earlier contents as were asked for.
    assert earlier_versions(history, head, ["d/b.txt"], 1).commits < commits


async def git_last_change(work: Path, rev: str, path: str) -> str:
    return (await git("log", "-1", "--format=%H", rev, "--", path, cwd=work)).stdout.strip()


async def test_last_changes_are_those_git_log_names_across_merges(history):
    # Kept answers of older commits serve the walks that reach them.
    for older in ("side", "master~2", "master~5"):
        commit_id = (await git("rev-parse", older, cwd=history)).stdout.strip()
        last_changes(history, commit_id, "", ["a.py"])
    for folder, names in (("", ["a.py", "c", "d", "e.md", "f.txt", "g.txt"]), ("d", ["b.txt"])):
        found = last_changes(history, "master", folder, names)
        for name in names:
            path = f"{folder}/{name}".lstrip("/")
            assert found[name].id == await git_last_change(history, "master", path), path
    # f.txt came from the side branch: the side's commit, not the merge that brought it.
    side_only = await git_last_change(history, "side", "f.txt")
    assert last_changes(history, "master", "", ["f.txt"])["f.txt"].id == side_only


async def test_last_changes_past_thousands_of_commits(tmp_path: Path):
    work = tmp_path / "long"
    await git("init", "-q", str(work))
    stream = ["blob\nmark :1\ndata 4\nold\n"]
    for i in range(2500):
        body = f"edit {i}\n"
        start = f"from :{i + 1}\n" if i else ""
        stream.append(
            f"commit refs/heads/master\nmark :{i + 2}\n"
            f"committer T <t@example.com> {1_600_000_000 + i} +0000\n"
            f"data {len(body)}\n{body}{start}"
            + ("M 100644 :1 data/old.txt\n" if i == 0 else "")
            + f"M 100644 inline data/f{i % 7}.txt\ndata {len(body)}\n{body}\n"
        )
    # No server shares this loop: a blocking run is fine.
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=work, input="".join(stream), check=True, text=True
    )
    names = ["old.txt", *(f"f{i}.txt" for i in range(7))]
    assert WALK_BUDGET < 2500
    found = last_changes(work, "master", "data", names)
    assert "old.txt" not in found and len(found) == 7  # past this call's budget
    found = last_changes(work, "master", "data", names)  # goes on where it stopped
    for name in names:
        assert found[name].id == await git_last_change(work, "master", f"data/{name}")
    assert found["old.txt"].message == "edit 0\n"  # the first of 2,500 commits


async def test_earlier_versions_follow_a_rename(tmp_path: Path):
    work = tmp_path / "renamed"
    await git("init", "-q", str(work))
    lines = "".join(f"line {i}\n" for i in range(20))
    await commit(work, {"keys.txt": "token = abc\n" + lines})
    await commit(work, {"keys.txt": "token = removed\n" + lines}, "drop the key")
    await git("mv", "keys.txt", "notes.txt", cwd=work)
    await commit(work, {"notes.txt": "notes\n" + lines}, "rename with an edit")
    await commit(work, {"notes.txt": "more notes\n" + lines}, "edit")
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    follow = await git("log", "--follow", "--format=%H", "--name-only", "--", "notes.txt", cwd=work)
    expected = []
    listed = [line for line in follow.stdout.splitlines() if line]  # a commit id, its name
    for commit_id, name in zip(listed[::2], listed[1::2], strict=True):
        blob = (await git("rev-parse", f"{commit_id}:{name}", cwd=work)).stdout.strip()
        expected.append((commit_id, blob, name))
    found = earlier_versions(work, head, ["notes.txt"], 20)
    assert found.versions["notes.txt"] == expected[1:]
    assert [name for _, _, name in found.versions["notes.txt"]] == ["notes.txt", *["keys.txt"] * 2]
    # A file's history follows it too, a page at a time.
    history = [c.id for c in file_history(work, "master", "notes.txt", 0, 10)]
    assert history == [commit_id for commit_id, _, _ in expected]
    assert [c.id for c in file_history(work, "master", "notes.txt", 1, 2)] == history[1:3]


async def test_commit_changes_find_renames_as_git_diff_does(tmp_path: Path):
    work = tmp_path / "moves"
    await git("init", "-q", str(work))
    text = "".join(f"line {i}\n" for i in range(10))
    await commit(
        work,
        {
            "same.txt": text,
            "edited.txt": "a\n" + text,
            "rewritten.txt": "x\n" + text,
            "w.bin": b"\0" * 99,
        },
    )
    (work / "moved").mkdir()
    for old, new in (("same.txt", "moved/same.txt"), ("edited.txt", "e.txt")):
        await git("mv", old, new, cwd=work)
    await git("mv", "rewritten.txt", "r.txt", cwd=work)
    await git("mv", "w.bin", "w2.bin", cwd=work)
    await commit(work, {"e.txt": "b\n" + text, "r.txt": "all new\n"}, "moves")
    found = commit_changes(work, "master")
    status = await git("diff-tree", "-r", "-M", "--name-status", "HEAD~1", "HEAD", cwd=work)
    kinds = {"A": "added", "D": "deleted", "M": "modified", "R": "renamed"}
    expected = set()
    for line in status.stdout.splitlines():
        kind, *paths = line.split("\t")
        expected.add((kinds[kind[0]], paths[-1], paths[0] if kind[0] == "R" else None))
    assert {(f.kind, f.path, f.old_path) for f in found.files} == expected
    assert ("renamed", "moved/same.txt", "same.txt") in expected  # exact
    assert ("renamed", "e.txt", "edited.txt") in expected  # similar
    assert ("renamed", "w2.bin", "w.bin") in expected  # binary, exact
    assert ("added", "r.txt", None) in expected  # too different
    edited = next(f for f in found.files if f.path == "e.txt")
    assert edited.lines == ["@@ -1,4 +1,4 @@", "-a", "+b", " line 0", " line 1", " line 2"]
    assert next(f for f in found.files if f.path == "moved/same.txt").lines == []

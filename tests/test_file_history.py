"""The earlier versions of files that the secret scan checks, found by one history walk."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.objects import ObjectID
from dulwich.repo import Repo

from amphub.storage.repo_files import PathNotFound, earlier_versions, file_entry
from tests.conftest import commit, git


def per_file_versions(path: Path, commit_id: str, file: str, limit: int) -> list[tuple[str, str]]:
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
                versions.append((entry.commit.id.decode(), blob_id))
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


async def test_the_history_is_walked_once_for_all_files(history):
    head = (await git("rev-parse", "HEAD", cwd=history)).stdout.strip()
    commits = int((await git("rev-list", "--count", "HEAD", cwd=history)).stdout)
    assert earlier_versions(history, head, FILES, 20).commits == commits
    # The walk stops once every file has as many earlier contents as were asked for.
    assert earlier_versions(history, head, ["d/b.txt"], 1).commits < commits

"""The last commit of each file of a folder (the files page) on long histories (issue 22).

Histories of COMMITS commits written with git fast-import: a folder of FILES files, each
commit editing one of them, and one file (`first.txt`) changed only by the first commit,
so that the walk for it goes through the whole history; every MERGE_EVERY commits a side
branch of two commits is merged. Timed: the first look at a page of the folder (the walk),
the same page again (cached), and `git log -1 -- path` for the oldest file, for scale.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amphub.storage.last_changes import last_changes  # noqa: E402

FILES = 200
MERGE_EVERY = 50


def history_stream(commits: int) -> Iterator[str]:
    """A fast-import stream: `commits` commits on master, merges of short side branches."""
    mark = 0

    def commit(branch: str, parents: list[int], path: str, n: int) -> str:
        nonlocal mark
        mark += 1
        body = f"edit {n}\n"
        head = f"commit refs/heads/{branch}\nmark :{mark}\n"
        head += f"committer B <b@example.com> {1_600_000_000 + n} +0000\ndata {len(body)}\n{body}"
        head += "".join(f"{'from' if i == 0 else 'merge'} :{p}\n" for i, p in enumerate(parents))
        return head + f"M 100644 inline {path}\ndata {len(body)}\n{body}\n"

    yield commit("master", [], "data/first.txt", 0)
    tip = mark
    for n in range(1, commits):
        if n % MERGE_EVERY == 0:
            yield commit("side", [tip], f"data/side{n % 7}.txt", n)
            yield commit("side", [mark], f"data/side{n % 7}.txt", n)
            yield commit("master", [tip, mark], f"data/f{n % FILES}.txt", n)
        else:
            yield commit("master", [tip] if tip else [], f"data/f{n % FILES}.txt", n)
        tip = mark


def build(root: Path, commits: int) -> Path:
    work = root / f"h{commits}"
    subprocess.run(["git", "init", "-q", "--bare", str(work)], check=True)
    stream = "".join(history_stream(commits))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=work, input=stream, text=True, check=True)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amphub-last-changes-") as tmp:
        for commits in args.commits:
            repo = build(Path(tmp), commits)
            names = ["first.txt", *(f"f{i}.txt" for i in range(FILES)), "side0.txt"]
            started = time.perf_counter()
            found = last_changes(repo, "master", "data", names)
            walk = time.perf_counter() - started
            started = time.perf_counter()
            last_changes(repo, "master", "data", names)
            cached = time.perf_counter() - started
            started = time.perf_counter()
            git = ["git", "log", "-1", "--format=%H", "master", "--", "data/first.txt"]
            expected = subprocess.run(git, cwd=repo, capture_output=True, text=True).stdout
            git_time = time.perf_counter() - started
            assert found["first.txt"].id == expected.strip()
            print(
                f"{commits:>7} commits, {len(names)} files: walk {walk:6.2f} s "
                f"({walk / commits * 1e6:5.0f} µs a commit), cached {cached * 1000:5.2f} ms, "
                f"git log -1 for the oldest file {git_time:5.2f} s"
            )


if __name__ == "__main__":
    main()

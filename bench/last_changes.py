"""The last commit of each file of a folder (the files page) on long histories (issue 22).

Histories of COMMITS commits written with git fast-import: a folder of FILES files, each
commit editing one of them, and one file (`first.txt`) changed only by the first commit,
so that the walk for it goes through the whole history; every MERGE_EVERY commits a side
branch of two commits is merged. Timed, at the commit ten before the tip: each call (a
files page) until every file has its commit (a call reads at most WALK_BUDGET commits),
the same page again (kept); then at the tip, as after a push of ten commits (the walk
reaches the kept one); and `git log -1 -- path` for the oldest file, for scale.
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

from amphub.storage.last_changes import WALK_BUDGET, last_changes  # noqa: E402

FILES = 200
MERGE_EVERY = 50


def history_stream(commits: int) -> Iterator[str]:
    """A fast-import stream: `commits` commits on master, merges of short side branches."""
    mark = 0

    def commit(branch: str, parents: list[int], n: int, *paths: str) -> str:
        nonlocal mark
        mark += 1
        body = f"edit {n}\n"
        head = f"commit refs/heads/{branch}\nmark :{mark}\n"
        head += f"committer B <b@example.com> {1_600_000_000 + n} +0000\ndata {len(body)}\n{body}"
        head += "".join(f"{'from' if i == 0 else 'merge'} :{p}\n" for i, p in enumerate(parents))
        files = "".join(f"M 100644 inline {p}\ndata {len(body)}\n{body}" for p in paths)
        return head + files + "\n"

    yield commit("master", [], 0, "data/first.txt")
    tip = mark
    for n in range(1, commits):
        if n % MERGE_EVERY == 0:
            side = f"data/side{n % 7}.txt"
            yield commit("side", [tip], n, side)
            yield commit("side", [mark], n + 1, side)
            # fast-import starts a merge from its first parent's tree: the side's file comes
            # in with the merge, as git's merge would bring it.
            yield commit("master", [tip, mark], n + 2, f"data/f{n % FILES}.txt", side)
        else:
            yield commit("master", [tip], n + 2, f"data/f{n % FILES}.txt")
        tip = mark


def build(root: Path, commits: int) -> Path:
    work = root / f"h{commits}"
    subprocess.run(["git", "init", "-q", "--bare", str(work)], check=True)
    stream = "".join(history_stream(commits))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=work, input=stream, text=True, check=True)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, nargs="+", default=[2_000, 20_000, 50_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amphub-last-changes-") as tmp:
        for commits in args.commits:
            repo = build(Path(tmp), commits)
            names = ["first.txt", *(f"f{i}.txt" for i in range(FILES)), "side0.txt"]
            before = subprocess.run(
                ["git", "rev-parse", "master~10"], cwd=repo, capture_output=True, text=True
            ).stdout.strip()
            calls: list[float] = []
            found: dict = {}
            while len(found) < len(names):
                started = time.perf_counter()
                found = last_changes(repo, before, "data", names)
                calls.append(time.perf_counter() - started)
            started = time.perf_counter()
            last_changes(repo, before, "data", names)
            kept = time.perf_counter() - started
            started = time.perf_counter()
            pushed = last_changes(repo, "master", "data", names)
            after_push = time.perf_counter() - started
            started = time.perf_counter()
            git = ["git", "log", "-1", "--format=%H", "master", "--", "data/first.txt"]
            expected = subprocess.run(git, cwd=repo, capture_output=True, text=True).stdout
            git_time = time.perf_counter() - started
            assert pushed["first.txt"].id == found["first.txt"].id == expected.strip()
            print(
                f"{commits:>7} commits, {len(names)} files: {len(calls)} calls of at most "
                f"{WALK_BUDGET} commits, {max(calls):5.2f} s the slowest, {sum(calls):6.2f} s "
                f"in all ({sum(calls) / commits * 1e6:4.0f} µs a commit); kept "
                f"{kept * 1000:5.2f} ms; after a push of 10 commits {after_push * 1000:6.1f} ms; "
                f"git log -1 for the oldest file {git_time:5.2f} s"
            )


if __name__ == "__main__":
    main()

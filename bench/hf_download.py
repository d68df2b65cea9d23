"""Benchmark: huggingface_hub's snapshot_download from amphub against git clone + git lfs pull.

One `amphub serve` on loopback holds a model with `--gib` GiB of LFS weights (`--files`
random safetensors-named files) and a few small files. In the same run, `--rounds`
times each, alternating:

- git: `git clone` (LFS smudge skipped) then `git lfs pull`, which is how a git user
  gets the files;
- huggingface_hub: `snapshot_download` in a fresh Python process with HF_ENDPOINT and
  HF_TOKEN pointing at amphub and an empty HF_HOME, as a user's script would run it.

Both get every byte from amphub into a fresh directory. Prints the best time of each and
the ratio huggingface_hub / git (goal ≤ 1.0).

It also times, once each, the uploads that made the model: the `git push` (with LFS) of the
weights, and `upload_folder` of the same folder into new models through Xet (the client's
default with hf_xet) and through LFS (`HF_HUB_DISABLE_XET=1`). No goal; Xet costs amphub
a rebuild of every file from its chunks.

    /work/venv/bin/python bench/hf_download.py [--gib 1] [--files 4] [--rounds 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from common import PYTHON, git_home, log, run_checked, run_folder, start_amphub, stop_and_clean

SPACE, MODEL = "bench", "weights"
GOAL = 1.0
PIECE = 16 * 1024 * 1024
NO_XET = {"HF_HUB_DISABLE_XET": "1"}
DOWNLOAD = """
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1]))
"""
UPLOAD = """
import sys
from huggingface_hub import HfApi
HfApi().upload_folder(folder_path=sys.argv[1], repo_id=sys.argv[2])
"""


def random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left > 0:
            piece = os.urandom(min(PIECE, left))
            out.write(piece)
            left -= len(piece)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts)


def by_git(server, root: Path, env: dict[str, str], name: str) -> tuple[float, int]:
    target = root / name
    start = time.perf_counter()
    run_checked(
        ["git", "clone", "-q", server.git_url(SPACE, MODEL), str(target)],
        cwd=root,
        env=env | {"GIT_LFS_SKIP_SMUDGE": "1"},
    )
    run_checked(["git", "lfs", "pull"], cwd=target, env=env)
    seconds = time.perf_counter() - start
    size = folder_bytes(target)
    shutil.rmtree(target)
    return seconds, size


def hf_env(server, home: Path) -> dict[str, str]:
    """A user's environment for huggingface_hub against amphub, with an empty HF_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return env | {
        "HF_ENDPOINT": server.base,
        "HF_TOKEN": server.key,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def by_huggingface_hub(server, root: Path, name: str) -> tuple[float, int]:
    home = root / name
    start = time.perf_counter()
    run_checked([PYTHON, "-c", DOWNLOAD, f"{SPACE}/{MODEL}"], cwd=root, env=hf_env(server, home))
    seconds = time.perf_counter() - start
    # The snapshot folder holds links into blobs/, where the bytes are.
    size = sum(p.stat().st_size for p in (home / "hub").rglob("blobs/*"))
    shutil.rmtree(home)
    return seconds, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = run_folder("hf-download-")
    env = git_home(root)
    try:
        run_checked(["git", "lfs", "install", "--skip-repo"], cwd=root, env=env)
        server = start_amphub(root)
        space = {"id": SPACE, "name": SPACE, "quota": 100 * 1024**3, "billing_mode": "monthly"}
        server.call("POST", "/api/v1/spaces", space)
        server.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": MODEL})

        size = int(args.gib * 1024**3) // args.files
        log(f"pushing {args.files} LFS files of {size / 1024**2:.0f} MiB")
        work = root / "work"
        run_checked(
            ["git", "clone", "-q", server.git_url(SPACE, MODEL), str(work)], cwd=root, env=env
        )
        for i in range(args.files):
            random_file(work / f"model-{i + 1:05}-of-{args.files:05}.safetensors", size)
        (work / "config.json").write_text('{"hidden_size": 4096}\n')
        run_checked(["git", "add", "-A"], cwd=work, env=env)
        run_checked(["git", "commit", "-q", "-m", "weights"], cwd=work, env=env)
        os.sync()
        start = time.perf_counter()
        run_checked(["git", "push", "-q", "origin", "master"], cwd=work, env=env)
        uploads = {"git push": time.perf_counter() - start}
        for way, extra in (("upload_folder, Xet", {}), ("upload_folder, LFS", NO_XET)):
            model = f"{MODEL}-{'lfs' if extra else 'xet'}"
            server.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": model})
            os.sync()
            log(f"{way}")
            upload = [PYTHON, "-c", UPLOAD, str(work), f"{SPACE}/{model}"]
            start = time.perf_counter()
            run_checked(upload, cwd=root, env=hf_env(server, root / f"up-{model}") | extra)
            uploads[way] = time.perf_counter() - start
        shutil.rmtree(work)
        os.sync()

        git_times, hf_times = [], []
        for round_ in range(args.rounds):
            log(f"round {round_ + 1}: git clone + git lfs pull")
            seconds, got = by_git(server, root, env, f"git-{round_}")
            git_times.append(seconds)
            os.sync()
            log(f"round {round_ + 1}: snapshot_download")
            seconds, got_hf = by_huggingface_hub(server, root, f"hf-{round_}")
            hf_times.append(seconds)
            os.sync()
            if got_hf < size * args.files or got < size * args.files:
                raise RuntimeError(f"a download is short: git {got} bytes, hf {got_hf} bytes")
        ratio = min(hf_times) / min(git_times)
        print(f"model: {args.files} LFS files, {size * args.files / 1024**3:.2f} GiB")
        print(f"git clone + git lfs pull: best {min(git_times):.2f} s of {git_times}")
        print(f"snapshot_download:        best {min(hf_times):.2f} s of {hf_times}")
        print(f"ratio snapshot_download / git: {ratio:.2f} (goal ≤ {GOAL})")
        print("goal met" if ratio <= GOAL else "goal NOT met")
        for way, seconds in uploads.items():
            rate = size * args.files / 1024**2 / seconds
            print(f"upload by {way + ':':20} {seconds:6.2f} s ({rate:.0f} MiB/s)")
        return 0
    finally:
        stop_and_clean(root, args.keep)


if __name__ == "__main__":
    sys.exit(main())

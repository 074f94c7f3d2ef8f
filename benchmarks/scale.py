"""A 10,000-item evaluation with two candidates: peak memory, retrieval speed against one-query-at-a-time, the
report's size and how fast Chromium opens it.

    python benchmarks/scale.py [--items 10000] [--config goldsets/support/harness.yaml] [--skip-browser]

The gold set is synthetic: the example's questions, each varied (a ticket number, a phrasing) so no two items
share a question, on the example corpus with the real MiniLM model and LanceDB; candidates are the extractive
baseline and the replay transcript (offline: the figures measure the harness, not a model). The run happens in
a child process so its peak RSS is its own. Retrieval speed is compared, in this same process and on the same
store, with the ideal it replaces: one query embedded and searched at a time. Headline figures last.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

sys.path.insert(0, str(Path(__file__).parent))
from _synth import portable_copy

PHRASES = ("", "Quick question: ", "Hello, ", "Please help: ", "Customer asks: ", "Urgent: ")


def synthetic_gold(source: Path, dest: Path, n: int, seed: int = 7) -> None:
    gold = yaml.safe_load(source.read_text())
    base = gold["items"]
    rng = random.Random(seed)
    items = []
    for i in range(n):
        item = dict(base[i % len(base)])
        item["id"] = f"{item['id']}-{i:05d}"
        item["question"] = f"{rng.choice(PHRASES)}{item['question']} (ticket {100000 + i})"
        items.append(item)
    dest.write_text(yaml.safe_dump({"name": f"scale-{n}", "items": items}, sort_keys=False))


def replay_for(gold_file: Path, replay_dir: Path) -> None:
    """The example's recorded answers, keyed to the synthetic ids."""
    recorded = {}
    for line in (replay_dir / "assistant-v1.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            recorded[rec["item_id"]] = rec
    out = []
    for item in yaml.safe_load(gold_file.read_text())["items"]:
        rec = recorded.get(item["id"].rsplit("-", 1)[0])
        if rec is not None:
            out.append(json.dumps({**rec, "item_id": item["id"]}))
    (replay_dir / "assistant-v1.jsonl").write_text("\n".join(out) + "\n")


def _peak_gib() -> float:
    """Peak resident memory so far (VmHWM), in GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def child_run(config: Path) -> None:
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.evaluation import execute_run

    stages: dict[str, float] = {}
    last = {"stage": "", "t": time.perf_counter()}

    peaks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if last["stage"]:
            stages[last["stage"]] = stages.get(last["stage"], 0.0) + now - last["t"]
        if stage != last["stage"]:
            peaks[f"before_{stage}"] = _peak_gib()
        last.update(stage=stage, t=now)

    t0 = time.perf_counter()
    result = execute_run(load_config(config), progress=progress, log=lambda s: None, skip_ingest=True)
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    peaks["end"] = _peak_gib()
    print(
        json.dumps(
            {
                "run_dir": str(result.run_dir),
                "seconds": total,
                "stages": stages,
                "peak_rss_gib": peak,
                "peaks": peaks,
                "status": result.summary.status,
            }
        )
    )


def retrieval_speedup(config: Path, n: int) -> tuple[float, float]:
    """Seconds per item: the batched path runs use, and one query embedded and searched at a time."""
    from ragharness.goldset import load_goldset
    from ragharness.pipeline.components import build_embedder, open_store
    from ragharness.pipeline.config import load_config
    from ragharness.retrieval.retriever import Retriever

    cfg = load_config(config)
    embedder = build_embedder(cfg)
    retriever = Retriever(embedder, open_store(cfg, embedder), mode=cfg.retrieval.mode, k=cfg.retrieval.k)
    items = load_goldset(cfg.resolve(cfg.goldset)).items[:n]
    retriever.retrieve_many(items[:64])  # warm up model and store
    t0 = time.perf_counter()
    for item in items:
        retriever.retrieve(item)
    single = (time.perf_counter() - t0) / len(items)
    t0 = time.perf_counter()
    for start in range(0, len(items), 256):
        retriever.retrieve_many(items[start : start + 256])
    batched = (time.perf_counter() - t0) / len(items)
    return single, batched


def browser_open_s(report: Path) -> float | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(report.as_uri(), wait_until="load")
        page.wait_for_selector("#summary")
        seconds = time.perf_counter() - t0
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="goldsets/support/harness.yaml")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--retrieval-sample", type=int, default=1000)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_run(Path(args.child))
        return
    with tempfile.TemporaryDirectory() as tmp:
        cfg_file = portable_copy(Path(args.config).resolve(), Path(tmp))
        project = cfg_file.parent
        synthetic_gold(project / "gold.yaml", project / "gold.yaml", args.items)
        replay_for(project / "gold.yaml", project / "replay")
        ingest = subprocess.run(
            [sys.executable, "-m", "ragharness", "ingest", str(cfg_file)], capture_output=True, text=True, check=False
        )
        if ingest.returncode != 0:
            sys.exit(f"ingest failed: {ingest.stderr}")
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(cfg_file)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            sys.exit(f"run failed ({done.returncode}): {done.stderr[-3000:]}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        run_dir = Path(child["run_dir"])
        report = run_dir / "report.html"
        report_mb = report.stat().st_size / 1e6
        pages_mb = sum(f.stat().st_size for f in run_dir.glob("report-items/*")) / 1e6
        open_s = None if args.skip_browser else browser_open_s(report)
        single, batched = retrieval_speedup(cfg_file, min(args.retrieval_sample, args.items))
    print(f"items: {args.items}")
    print("candidates: 2")
    print(f"run_status: {child['status']}")
    for stage, seconds in sorted(child["stages"].items()):
        print(f"stage_{stage}_s: {seconds:.1f}")
    for point, gib in child["peaks"].items():
        print(f"peak_rss_gib_{point}: {gib:.2f}")
    print(f"retrieval_ms_per_item_one_at_a_time: {single * 1000:.2f}")
    print(f"retrieval_ms_per_item_batched: {batched * 1000:.2f}")
    print(f"report_item_pages_mb: {pages_mb:.2f}")
    print(f"run_seconds: {child['seconds']:.1f}")
    print(f"retrieval_speedup_vs_one_at_a_time: {single / batched:.2f}")
    print(f"report_html_mb: {report_mb:.2f}")
    print(f"report_open_s_chromium: {'n/a (no chromium)' if open_s is None else f'{open_s:.2f}'}")
    print(f"peak_rss_gib: {child['peak_rss_gib']:.2f}")


if __name__ == "__main__":
    main()

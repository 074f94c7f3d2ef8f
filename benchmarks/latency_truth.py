"""Is the latency a run records the model's? A model server on 127.0.0.1 (ragharness.testing.model_server) sleeps a
known, jittered time per request and times each request itself; a full run (two candidates at concurrency 16,
PII guardrails on questions and answers, the LLM judge scoring every answer, occasional 429s) records its own
latencies. The ideal is the server's own figure, measured in the same run.

    python benchmarks/latency_truth.py [--items 200] [--latency-ms 120] [--jitter-ms 60] [--stream]

With `--stream` the server streams its answers (first token after the jittered latency, then a word every 15 ms)
and the calls stream too: the time to first token is compared with the server's as well (`ttft_*`).

Printed: the recorded and server-side p50/p95, their errors in percent, and how long the run's event loop was
stalled (a probe task asks to wake every 5 ms; the stall is how late it woke, p95 and max) while calls were in
flight. Headline figures last, `name: value`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ragharness.generation.runner import Runner  # noqa: E402
from ragharness.pipeline.config import load_config  # noqa: E402
from ragharness.pipeline.evaluation import execute_run  # noqa: E402
from ragharness.runs.summary import percentile  # noqa: E402
from ragharness.testing.model_server import ModelServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=120.0)
    ap.add_argument("--jitter-ms", type=float, default=60.0)
    ap.add_argument("--stream", action="store_true", help="streamed answers; also compares time to first token")
    args = ap.parse_args()
    os.environ["OPENAI_KEY"] = "sk-benchmark"
    import test_latency_truth as project_kit

    project_kit.N_ITEMS = args.items
    stalls: list[float] = []
    real_run = Runner.run

    async def probed(self: Runner, requests: Any, total: int | None = None) -> Any:
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                await asyncio.sleep(0.005)
                stalls.append(max(0.0, (time.perf_counter() - t0) * 1000 - 5.0))

        task = asyncio.create_task(probe())
        try:
            return await real_run(self, requests, total)
        finally:
            stop.set()
            await task

    Runner.run = probed  # type: ignore[method-assign]
    token_ms = 15.0 if args.stream else 0.0
    served = ModelServer(
        project_kit.answer, latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, fail_every=37, token_ms=token_ms
    )
    with served as server:
        root = Path(tempfile.mkdtemp(prefix="latency-truth-"))
        cfg = project_kit.project(root, server.base_url, stream=args.stream)
        started = time.perf_counter()
        run = execute_run(load_config(cfg), log=lambda s: None)
        wall = time.perf_counter() - started
        gens = [json.loads(x) for x in (run.run_dir / "generations.jsonl").read_text().splitlines()]
        mine = [g["latency_ms"] for g in gens if g["error"] is None]
        truth = server.latencies(project_kit.CANDIDATE)
        first = server.ttfts()
        ttft_mine = [g["ttft_ms"] for g in gens if g["error"] is None and g.get("ttft_ms") is not None]
        ttft_truth = [first[g["request_id"]] for g in gens if g["error"] is None and g["request_id"] in first]
    show(mine, truth, ttft_mine, ttft_truth, stalls, wall, sum(1 for s in server.served if s.model == "judge-model"))


def show(
    mine: list[float],
    truth: list[float],
    ttft_mine: list[float],
    ttft_truth: list[float],
    stalls: list[float],
    wall: float,
    judge_calls: int,
) -> None:
    r50, r95, s50, s95 = percentile(mine, 50), percentile(mine, 95), percentile(truth, 50), percentile(truth, 95)
    print(f"calls: {len(mine)}")
    print(f"judge_calls: {judge_calls}")
    print(f"run_wall_s: {wall:.2f}")
    print(f"recorded_p50_ms: {r50:.1f}")
    print(f"server_p50_ms: {s50:.1f}")
    print(f"recorded_p95_ms: {r95:.1f}")
    print(f"server_p95_ms: {s95:.1f}")
    print(f"harness_stall_ms_max: {max(stalls, default=0.0):.1f}")
    print(f"harness_stall_ms_p95: {percentile(stalls, 95):.2f}")
    if ttft_mine:
        t50, t95 = percentile(ttft_mine, 50), percentile(ttft_mine, 95)
        u50, u95 = percentile(ttft_truth, 50), percentile(ttft_truth, 95)
        print(f"ttft_recorded_p50_ms: {t50:.1f}")
        print(f"ttft_server_p50_ms: {u50:.1f}")
        print(f"ttft_p50_error_pct: {100 * (t50 - u50) / u50:.2f}")
        print(f"ttft_p95_error_pct: {100 * (t95 - u95) / u95:.2f}")
    print(f"latency_p50_error_pct: {100 * (r50 - s50) / s50:.2f}")
    print(f"latency_p95_error_pct: {100 * (r95 - s95) / s95:.2f}")


if __name__ == "__main__":
    main()

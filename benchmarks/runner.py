"""Runner efficiency: N items x C mock candidates with fixed latency and per-candidate concurrency.

    python benchmarks/runner.py [--items 400] [--candidates 4] [--latency-ms 100] [--concurrency 16]

Ideal wall time is what perfect scheduling needs: per candidate, ceil(calls / concurrency) x latency, candidates
in parallel. In the throttled scenario 30 % of attempts are rejected with a rate-limit error after the same
latency, so the ideal counts every attempt actually made (measured in the same run). Results are appended to
a real run directory (durable JSONL appends), as in a real run. Headline figures last.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from pathlib import Path

from ragharness.core.retry import RetryPolicy
from ragharness.core.types import Candidate, Generation, GuardrailAction, Passage, PromptRef
from ragharness.generation.providers.base import GenerationRequest, ProviderContext
from ragharness.generation.providers.offline import MockProvider
from ragharness.generation.runner import Runner
from ragharness.runs.rundir import RunDir

PASSAGES = (Passage(number=1, chunk_id="d#0", doc_id="d", text="Refunds are paid within 10 business days."),)


def scenario(items: int, n_cands: int, latency_ms: float, concurrency: int, throttle: float, out: Path) -> dict:
    cands = [
        Candidate(
            name=f"c{i}",
            provider="mock",
            prompt=PromptRef(id="p", version=1),
            options={"latency_ms": latency_ms, "throttle_rate": throttle, "seed": i},
        )
        for i in range(n_cands)
    ]
    providers = {c.name: MockProvider(c, ProviderContext()) for c in cands}
    requests = [
        GenerationRequest(
            item_id=f"q{n}",
            candidate=c,
            system="s",
            user=f"question {n}",
            question="q",
            passages=PASSAGES,
            request_hash=f"{c.name}:{n}",
        )
        for n in range(items)
        for c in cands
    ]
    run = RunDir(out)
    out.mkdir(parents=True, exist_ok=True)

    def on_done(gen: Generation, actions: list[GuardrailAction]) -> None:
        run.append("generations.jsonl", [gen])

    runner = Runner(
        providers,
        {c.name: concurrency for c in cands},
        on_done=on_done,
        policy=RetryPolicy(max_attempts=20, base_delay_s=0.05, max_delay_s=0.2),
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    gens = asyncio.run(runner.run(requests))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    attempts = {c.name: sum(g.attempts for g in gens if g.candidate == c.name) for c in cands}
    ideal = max(math.ceil(a / concurrency) for a in attempts.values()) * latency_ms / 1000
    return {
        "wall": wall,
        "ideal": ideal,
        "cpu": cpu,
        "calls": len(requests),
        "completed": sum(g.ok for g in gens),
        "retries": runner.stats.retried,
        "attempts": sum(attempts.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--latency-ms", type=float, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = scenario(a.items, a.candidates, a.latency_ms, a.concurrency, 0.0, Path(tmp) / "plain")
        throttled = scenario(a.items, a.candidates, a.latency_ms, a.concurrency, 0.3, Path(tmp) / "throttled")
    for name, r in (("plain", plain), ("throttled", throttled)):
        print(f"{name}_calls: {r['calls']}")
        print(f"{name}_completed: {r['completed']}")
        print(f"{name}_attempts: {r['attempts']}")
        print(f"{name}_retries: {r['retries']}")
        print(f"{name}_ideal_s: {r['ideal']:.3f}")
        print(f"{name}_wall_s: {r['wall']:.3f}")
        print(f"{name}_cpu_ms_per_call: {r['cpu'] / r['calls'] * 1000:.3f}")
    print(f"efficiency: {plain['ideal'] / plain['wall']:.3f}")
    print(f"overhead_ms_per_item: {(plain['wall'] - plain['ideal']) / a.items * 1000:.3f}")
    print(f"throttled_efficiency: {throttled['ideal'] / throttled['wall']:.3f}")


if __name__ == "__main__":
    main()

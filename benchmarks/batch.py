"""What the harness adds to a big run in batch mode: 20,000 items x 3 candidates (default) through a fake batch
backend that completes every job at once.

    python benchmarks/batch.py [--items 20000] [--candidates 3] [--max-records 50000]

For each candidate the same path a run takes: pending requests -> shards within the job quotas -> upload ->
create -> poll -> streamed download -> results index -> the Runner turning every record into the Generation an
online call makes (output parsing, cost at the batch price, citations) -> appended to generations.jsonl. The fake
provider's own work (answering the records) is timed apart and left out of the harness's time.

The ideal, measured in the same run: writing each record's input line once and reading its output line once
(plain JSON dumps/loads through files, nothing else); `harness_vs_ideal` is the ratio. Peak RSS is the process's
high-water mark (ru_maxrss) above what it used before the first job. Headline figures last, `name: value`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragharness.batch.base import JobLimits  # noqa: E402
from ragharness.batch.jobs import JobRunner  # noqa: E402
from ragharness.batch.settings import BatchConfig  # noqa: E402
from ragharness.core.types import Candidate, Generation, GuardrailAction, Passage, Price, PromptRef  # noqa: E402
from ragharness.generation.batching import BatchResults, send  # noqa: E402
from ragharness.generation.costs import Budget, PriceTable  # noqa: E402
from ragharness.generation.providers.base import GenerationRequest, ProviderContext, request_hash  # noqa: E402
from ragharness.generation.providers.openai_compat import OpenAIProvider  # noqa: E402
from ragharness.generation.runner import Runner  # noqa: E402
from ragharness.testing.batch import InstantBackend  # noqa: E402

ANSWER = "Annual plans can be refunded within 30 days of purchase [1]. Monthly plans are not refundable [2]."


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def completion(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 40},
    }


class TimedBackend(InstantBackend):
    """The instant fake, with the time it spends being the provider (answering records) measured apart."""

    provider_s = 0.0

    def finish(self, job_id: str) -> None:
        t0 = time.perf_counter()
        super().finish(job_id)
        TimedBackend.provider_s += time.perf_counter() - t0


def requests(cand: Candidate, n: int) -> Iterator[GenerationRequest]:
    passages = tuple(
        Passage(number=k, chunk_id=f"c{k}", doc_id=f"d{k}", title="Refunds", text="Annual plans: 30 days. " * 12)
        for k in range(1, 6)
    )
    system = "Answer only from the numbered passages and cite them like [1]."
    context = "\n".join(f"[{p.number}] {p.text}" for p in passages)
    for i in range(n):
        user = f"Question {i}: how long do I have to get a refund?\n\n{context}"
        yield GenerationRequest(
            item_id=f"q{i:06d}",
            candidate=cand,
            system=system,
            user=user,
            question=f"Question {i}",
            passages=passages,
            request_hash=request_hash(cand, system, user),
        )


def ideal(root: Path, cand: Candidate, n: int) -> float:
    """Each record's input line written once and its output line read once: the floor for any batch path."""
    t0 = time.perf_counter()
    path = root / "ideal.jsonl"
    with path.open("w") as fh:
        for r in requests(cand, n):
            fh.write(json.dumps({"custom_id": r.request_hash, "body": {"messages": [r.system, r.user]}}) + "\n")
    out = root / "ideal.out.jsonl"
    with out.open("w") as fh:
        line = json.dumps({"output": completion({"model": "m"})})
        for _ in range(n):
            fh.write(line + "\n")
    with out.open() as fh:
        for line in fh:
            json.loads(line)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--max-records", type=int, default=50_000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rh-batch-bench-"))
    cands = [
        Candidate(name=f"cand{k}", provider=f"openai:model-{k}", prompt=PromptRef(id="support-answer", version=1))
        for k in range(args.candidates)
    ]
    providers = {c.name: OpenAIProvider(c, ProviderContext()) for c in cands}
    prices = PriceTable({f"model-{k}": Price(input_per_1k=0.15, output_per_1k=0.6) for k in range(args.candidates)})
    budget = Budget(None)
    settings = BatchConfig(poll_interval_s=0.001)
    out = (root / "generations.jsonl").open("w")
    answers: dict[str, BatchResults] = {}
    base = peak_mb()
    jobs_total = 0
    t0 = time.perf_counter()
    for cand in cands:
        backend = TimedBackend(root / "provider", completion, limits=JobLimits(max_records=args.max_records))
        jobs = JobRunner(backend, root / "batch", cand.name, tag="bench", poll_interval_s=0.0, sleep=lambda s: None)
        answers[cand.name] = send(
            cand.name,
            providers[cand.name],
            jobs,
            lambda c=cand: requests(c, args.items),
            settings=settings,
            prices=prices,
            budget=budget,
            cache=None,
            log=lambda s: None,
        )
        jobs_total += backend.calls.get("create", 0)

    def every() -> Iterator[GenerationRequest]:
        for cand in cands:
            yield from requests(cand, args.items)

    def record(gen: Generation, _acts: list[GuardrailAction]) -> None:
        out.write(gen.model_dump_json() + "\n")

    runner = Runner(
        dict(providers), {c.name: 8 for c in cands}, prices=prices, budget=budget, on_done=record, batch=answers
    )
    asyncio.run(runner.run(every(), total=args.items * args.candidates))
    out.close()
    wall = time.perf_counter() - t0
    records = args.items * args.candidates
    harness = wall - TimedBackend.provider_s
    floor = sum(ideal(root, c, args.items) for c in cands)
    gens = sum(1 for _ in (root / "generations.jsonl").open())
    assert gens == records and runner.stats.failed == 0, (gens, runner.stats)
    print(f"records: {records:,} ({args.candidates} candidates x {args.items:,} items)")
    print(f"wall_s: {wall:.2f} (fake provider {TimedBackend.provider_s:.2f} s, left out)")
    print(f"ideal_ms_per_record: {floor / records * 1000:.4f}")
    print(f"batch_cost_usd: {runner.stats.cost_usd:.2f}")
    print(f"harness_vs_ideal: {harness / floor:.2f}")
    print(f"jobs: {jobs_total}")
    print(f"peak_rss_growth_mb: {peak_mb() - base:.0f}")
    print(f"harness_ms_per_record: {harness / records * 1000:.4f}")


if __name__ == "__main__":
    main()

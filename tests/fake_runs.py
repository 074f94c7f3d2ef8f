"""Fabricate run directories (gold set, generations, scores, summary) for comparison, history and trend tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ragharness.core.types import (
    Candidate,
    ContextPack,
    Generation,
    GoldItem,
    GoldSet,
    Passage,
    PromptRef,
    Score,
    SearchMode,
    Usage,
)
from ragharness.reporting.report import write_report
from ragharness.runs.rundir import RunDir, RunManifest
from ragharness.runs.summary import summarise

INTENTS = ("billing", "access", "limits")
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
"""Model output that would run if a page did not escape it."""


def flags(n: int, n_true: int, seed: int = 0) -> list[bool]:
    out = [True] * n_true + [False] * (n - n_true)
    random.Random(seed).shuffle(out)
    return out


def make_run(
    root: Path,
    run_id: str,
    correct: dict[str, list[bool]],
    *,
    started_at: str = "2026-11-01T02:00:00+00:00",
    name: str = "nightly-demo",
    answers: dict[str, list[str]] | None = None,
    gate: str = "",
    prompt_version: int = 1,
    cost: float = 0.001,
    extra_metrics: tuple[str, ...] = (),
    correctness_metric: str = "correctness",
) -> RunDir:
    n = len(next(iter(correct.values())))
    items = [
        GoldItem(
            id=f"q{i:03d}",
            question=f"Question {i}?",
            intent=INTENTS[i % 3],
            reference_answer=f"Answer {i}.",
            expected_sources=[f"d{i}"],
        )
        for i in range(n)
    ]
    path = root / run_id
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    cands = [
        Candidate(name=c, provider="replay", prompt=PromptRef(id="support-answer", version=prompt_version))
        for c in correct
    ]
    packs = [
        ContextPack(
            item_id=i.id,
            question=i.question,
            mode=SearchMode.hybrid,
            k=1,
            passages=(Passage(number=1, chunk_id=f"d{n_}#0", doc_id=f"d{n_}", text=f"Answer {n_}."),),
        ).with_hash()
        for n_, i in enumerate(items)
    ]
    gens, scores = [], []
    for c, flags in correct.items():
        texts = (answers or {}).get(c) or [f"Answer {k}. [1]" if ok else f"Wrong {k}." for k, ok in enumerate(flags)]
        for item, ok, text in zip(items, flags, texts, strict=True):
            gens.append(
                Generation(
                    item_id=item.id,
                    candidate=c,
                    text=text,
                    usage=Usage(input_tokens=500, output_tokens=40),
                    latency_ms=800.0,
                    cost_usd=cost,
                )
            )
            for metric, value, label in (
                (correctness_metric, 1.0 if ok else 0.0, "correct" if ok else "incorrect"),
                ("groundedness", 1.0 if ok else 0.5, "grounded" if ok else "partially_grounded"),
                ("refusal", 1.0, "answered"),
                *((m, 0.75, "") for m in extra_metrics),
            ):
                scores.append(
                    Score(
                        item_id=item.id,
                        candidate=c,
                        metric=metric,
                        value=value,
                        label=label,
                        reason="fabricated",
                        scorer=metric,
                        scorer_version="1",
                    )
                )
    for item in items:
        scores.append(
            Score(
                item_id=item.id,
                candidate="",
                metric="retrieval_hit",
                value=1.0,
                label="hit",
                reason="fabricated",
                scorer="retrieval",
                scorer_version="1",
            )
        )
    summary = summarise(run_id, name, items, cands, gens, scores, [], [])
    run.write_json(
        "run.json",
        RunManifest(
            run_id=run_id, name=name, started_at=started_at, status=summary.status, candidates=list(correct), gate=gate
        ),
    )
    run.write_json("goldset.json", GoldSet(name=name, items=items))
    run.write_yaml("config.yaml", {"name": name})
    run.write_jsonl("context_packs.jsonl", packs)
    run.write_jsonl("generations.jsonl", gens)
    run.write_jsonl("scores.jsonl", scores)
    run.write_json("summary.json", summary)
    write_report(run)
    return run


def history(root: Path, n: int = 30) -> None:
    rng = random.Random(3)
    for k in range(n):
        rate = 0.8 + 0.1 * rng.random() - (0.3 if k == 20 else 0.0)
        make_run(
            root,
            f"run-{k:02d}",
            {"bot": flags(30, int(30 * rate), seed=k)},
            started_at=(datetime(2026, 10, 1, 2, tzinfo=UTC) + timedelta(days=k)).isoformat(),
            gate="regressed" if k == 20 else "pass",
            prompt_version=5 if k < 15 else 6,
            cost=0.001 + k * 1e-5,
        )

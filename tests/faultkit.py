"""Helpers for the fault suite (`pytest -m faults`): a small self-contained project, the CLI as a subprocess
(optionally killed at a named point), and readers for what the runs left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import write

CONFIG = """
name: faults
data_dir: data
output_dir: runs
corpus: {{path: corpus}}
chunking: {{chunk_size: 60, chunk_overlap: 8}}
embedder: {{kind: hashing}}
retrieval: {{mode: hybrid, k: 3}}
goldset: gold.yaml
guardrails: {{input: [], output: []}}
runner: {{max_attempts: 3, base_delay_s: 0.01, max_delay_s: 0.05}}
prices: {{mock: {{input_per_1k: 1.0, output_per_1k: 1.0}}}}
{extra}
candidates:
  - name: m1
    provider: mock
    concurrency: 2
    options: {{latency_ms: {latency}, call_log: calls.jsonl, input_tokens: 100, output_tokens: 10}}
  - name: m2
    provider: mock
    concurrency: 2
    options: {{latency_ms: {latency}, call_log: calls.jsonl, input_tokens: 100, output_tokens: 10,
               error_rate: {m2_error_rate}}}
"""

N_ITEMS = 24


def project(root: Path, *, latency: int = 60, m2_error_rate: float = 0.0, extra: str = "", docs: int = 6) -> Path:
    write(root / "harness.yaml", CONFIG.format(latency=latency, m2_error_rate=m2_error_rate, extra=extra))
    for i in range(docs):
        write(
            root / f"corpus/doc{i}.md",
            f"# Topic {i}\n\nFact {i}: plan {i} includes {i * 5} GB of storage. "
            f"Refunds for plan {i} take {i + 3} days.\n",
        )
    items = [
        {
            "id": f"q{i:02d}",
            "question": f"How much storage does plan {i % 6} include?",
            "intent": f"i{i % 3}",
            "reference_answer": f"Plan {i % 6} includes {(i % 6) * 5} GB.",
            "expected_sources": [f"doc{i % 6}"],
        }
        for i in range(N_ITEMS)
    ]
    write(root / "gold.yaml", yaml.safe_dump({"name": "faults", "items": items}))
    return root / "harness.yaml"


def cli(
    *args: str, cwd: Path, kill_at: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full.pop("RAGHARNESS_KILL_AT", None)
    if kill_at:
        full["RAGHARNESS_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "ragharness", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def calls(root: Path) -> list[tuple[str, str]]:
    log = root / "calls.jsonl"
    if not log.is_file():
        return []
    return [(r["item_id"], r["candidate"]) for r in map(json.loads, log.read_text().splitlines())]


def final(run_dir: Path) -> dict[tuple[str, str], str]:
    gens = [json.loads(line) for line in (run_dir / "generations.jsonl").read_text().splitlines()]
    return {(g["item_id"], g["candidate"]): g["text"] for g in gens}


def scores(run_dir: Path) -> list[tuple[str, str, str, float | None]]:
    rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    return sorted((s["item_id"], s["candidate"], s["metric"], s["value"]) for s in rows)


def assert_nothing_torn(folder: Path) -> None:
    """Every JSON file parses whole, every JSONL line parses, and no temp file is left behind."""
    for f in folder.rglob("*"):
        if not f.is_file():
            continue
        assert not f.name.endswith(".tmp"), f"temp file left behind: {f}"
        if f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))
        if f.suffix == ".jsonl":
            text = f.read_text(encoding="utf-8")
            assert not text or text.endswith("\n"), f"torn last line in {f}"
            for line in text.splitlines():
                json.loads(line)

"""The library API: a notebook or a pytest test evaluates, re-scores and compares without the CLI, gets typed
results and the package's exceptions, and nothing is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ragharness


def test_evaluate_rescore_and_compare_from_python(mini_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ragharness.load_config(mini_project / "harness.yaml")
    first = ragharness.evaluate(cfg, items=["refund", "storage"])
    assert first.summary.n_items == 2 and (first.run_dir / "report.html").is_file()
    second = ragharness.evaluate(mini_project / "harness.yaml", ingest=False)  # a path works as well as a config
    assert second.summary.n_items == 3 and second.run_dir != first.run_dir
    scored = ragharness.rescore(second.run_dir, scorers=["refusal"])
    assert scored.records == {"refusal@1": 6}  # 3 items x 2 candidates, and only the scorer asked for
    rows = [json.loads(x) for x in (second.run_dir / "scores.jsonl").read_text().splitlines()]
    assert sum(r["metric"] == "refusal" for r in rows) == 12  # appended beside the run's own records
    diff = ragharness.compare(second.run_dir, candidate_a="ext", candidate_b="rep")
    assert (diff.n_items, diff.changed_metric) == (3, "correctness")
    assert {c.item_id for c in diff.changed} == {"storage", "weather"}  # rep is wrong on both (see the scores)
    # what the README's "From Python" example reads
    assert {c.candidate: c.metrics["correctness"].mean for c in second.summary.candidates} == {"ext": 1.0, "rep": 1 / 3}
    row = next(m for m in diff.metrics if m.metric == "correctness" and m.intent in ("", None, "all"))
    assert row.result.diff < 0 and isinstance(row.result.significant, bool)
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err == ""  # library calls print nothing


def test_bad_input_is_the_packages_exception_not_an_exit(tmp_path: Path) -> None:
    with pytest.raises(ragharness.ConfigError, match="config file not found"):
        ragharness.evaluate(tmp_path / "nope.yaml")
    with pytest.raises(ragharness.RunError):
        ragharness.rescore(tmp_path)


def test_importing_ragharness_loads_no_heavy_room() -> None:
    code = (
        "import sys, ragharness\n"
        "libs = ('torch', 'lancedb', 'boto3', 'presidio_analyzer', 'numpy', 'httpx', 'spacy')\n"
        "packages = {'ragharness.' + p for p in ('core', 'pipeline', 'ingest', 'retrieval', 'guardrails', 'batch',"
        " 'generation', 'scoring')}\n"
        "light = {'ragharness.api', 'ragharness.pipeline.config', 'ragharness.guardrails.policy'}\n"
        "rooms = [m for m in sys.modules if m.startswith('ragharness.') and m not in packages | light\n"
        "         and not m.startswith('ragharness.core.') and not m.endswith('.settings')]\n"
        "print([m for m in libs if m in sys.modules] + sorted(rooms))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

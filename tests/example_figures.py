"""The figures of the example's summary.json that a refactor must not change: every metric's mean, counts and
labels per candidate, and the retrieval metrics. Latency and cost are left out (they vary run to run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden" / "example_figures.json"


def _metric(m: dict[str, Any]) -> dict[str, Any]:
    mean = m["mean"]
    return {
        "mean": None if mean is None else round(mean, 6),
        "n": m["n"],
        "n_applicable": m["n_applicable"],
        "n_errors": m["n_errors"],
        "labels": dict(sorted(m["labels"].items())),
    }


def figures(summary_file: Path) -> dict[str, Any]:
    s = json.loads(summary_file.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"n_items": s["n_items"], "status": s["status"], "guardrails": s["guardrails"]}
    for c in s["candidates"]:
        out[c["candidate"]] = {
            "generations": c["generations"],
            "errors": c["errors"],
            "metrics": {k: _metric(v) for k, v in sorted(c["metrics"].items())},
            "by_intent": {
                i: {k: _metric(v) for k, v in sorted(ms.items())} for i, ms in sorted(c["by_intent"].items())
            },
        }
    out["retrieval"] = {k: _metric(v) for k, v in sorted(s["retrieval"].items())}
    g = s["guardrail"]
    keys = ("expectations", "expectations_met", "should_stop", "under_blocked", "should_pass", "over_blocked")
    out["guardrail"] = {k: g[k] for k in (*keys, "pii_leaks", "failed_checks", "action_rates", "stopped_items")}
    return out


if __name__ == "__main__":  # python tests/example_figures.py RUN_DIR  (re-records the golden file)
    import sys

    GOLDEN.write_text(json.dumps(figures(Path(sys.argv[1]) / "summary.json"), indent=1, sort_keys=True) + "\n")

"""report.html: a pure function of the run directory. Jinja2 with autoescape: everything shown is escaped."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from ragharness.eval.annotate import Calibration
from ragharness.eval.judge import JUDGE_METRICS
from ragharness.eval.rundir import RunDir
from ragharness.eval.summary import RunSummary
from ragharness.fileio import atomic_write_text
from ragharness.types import Generation

TEMPLATES = Path(__file__).parent / "templates"
MAIN_METRICS = (
    "correctness",
    "groundedness",
    "citation_coverage",
    "citation_validity",
    "citation_precision",
    "refusal",
)
RETRIEVAL_METRICS = ("retrieval_hit", "retrieval_recall", "retrieval_mrr", "retrieval_ndcg")
_CITE = re.compile(r"\[(\d{1,3})\]")


def cite_links(text: str, anchor: str, n_passages: int) -> Markup:
    """Escape the answer, then turn [n] into a link to passage n (an invalid number is marked, not linked)."""
    safe = str(escape(text))

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= n_passages:
            return f'<a class="cite" href="#{anchor}-p{n}">[{n}]</a>'
        return f'<span class="cite bad" title="no passage {n} in the context">[{n}]</span>'

    return Markup(_CITE.sub(link, safe))  # noqa: S704 - built from escaped text and digits only


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["fmt"] = fmt
    env.globals["cite_links"] = cite_links
    return env


def render_report(run: RunDir) -> str:
    manifest = run.manifest()
    summary = run.read_model("summary.json", RunSummary, f"re-create it with `ragharness score {run.path}`")
    gold = run.goldset()
    packs = {p.item_id: p for p in run.packs()}
    gens: dict[str, dict[str, Generation]] = defaultdict(dict)
    for g in run.generations():
        gens[g.item_id][g.candidate] = g
    scores: dict[tuple[str, str], dict[str, object]] = defaultdict(dict)
    for s in run.scores():
        scores[(s.item_id, s.candidate)][s.metric] = s
    candidates = [c.candidate for c in summary.candidates]
    present = {m for c in summary.candidates for m in c.metrics}
    metrics = [m for m in (*MAIN_METRICS, *JUDGE_METRICS) if m in present]
    calibration = None
    if run.file("calibration.json").is_file():
        calibration = Calibration.model_validate_json(run.file("calibration.json").read_text(encoding="utf-8"))
    anchors = {item.id: "i-" + re.sub(r"[^A-Za-z0-9_-]", "_", item.id) for item in gold.items}
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            manifest=manifest,
            summary=summary,
            items=gold.items,
            packs=packs,
            gens=gens,
            scores=scores,
            candidates=candidates,
            main_metrics=metrics,
            calibration=calibration,
            retrieval_metrics=RETRIEVAL_METRICS,
            anchors=anchors,
        )
    )


def write_report(run: RunDir) -> Path:
    out = run.file("report.html")
    atomic_write_text(out, render_report(run))
    return out

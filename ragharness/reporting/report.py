"""report.html: a pure function of the run directory. Jinja2 with autoescape: everything shown is escaped."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path
from sys import intern
from typing import Any, NamedTuple

from pydantic import BaseModel

from ragharness.analysis.labels import Calibration
from ragharness.core.fileio import atomic_write_text
from ragharness.core.memory import trim
from ragharness.core.types import ContextPack, Generation, GoldItem, GuardrailAction
from ragharness.reporting.jinja import environment
from ragharness.runs.rundir import RunDir
from ragharness.runs.summary import RunSummary
from ragharness.scoring import metrics as catalog


def headline_metrics(present: set[str]) -> list[str]:
    """The answer metrics a summary table shows, in catalog order: headline ones, then any a plugin added."""
    shown = [m for m in catalog.ordered(present) if catalog.spec(m).family in ("answer", "judge", "assertion")]
    extra = [m for m in shown if m not in catalog.names() and not m.startswith("assert_")]  # a plugin's metrics
    return [m for m in shown if catalog.spec(m).headline or m in extra]


INLINE_ITEMS = 300
"""Up to this many items the report shows every item inline; above, the failures inline and every item on
separate pages of PAGE_SIZE, so a 10,000-item report stays a few MB and opens at once."""
PAGE_SIZE = 200
ATTENTION_INLINE = 200
PAGES_DIR = "report-items"


class _ScoreView(NamedTuple):
    value: float | None
    label: str
    reason: str


class _Page(BaseModel):
    href: str
    first: int
    last: int


def _needs_attention(
    item_id: str, candidates: list[str], gens: dict[str, dict[str, Generation]], scores: Any, primary: str
) -> bool:
    for c in candidates:
        g = gens[item_id].get(c)
        if g is None or g.error is not None or g.blocked_by:
            return True
        correctness = scores[(item_id, c)].get(primary)
        refusal = scores[(item_id, c)].get("refusal")
        if correctness is not None and correctness.label not in ("correct", "correctly_refused"):
            return True
        if refusal is not None and refusal.label in ("should_have_refused", "wrongly_refused"):
            return True
        assertions = scores[(item_id, c)].get("assertions")
        if assertions is not None and assertions.label == "fail":
            return True
    return False


def _context(run: RunDir, calibration: Calibration | None = None) -> dict[str, Any]:
    manifest = run.manifest()
    summary = run.read_model("summary.json", RunSummary, f"re-create it with `ragharness score {run.path}`")
    gold = run.goldset()
    gens: dict[str, dict[str, Generation]] = defaultdict(dict)
    for g in run.generations():
        gens[g.item_id][g.candidate] = g
    scores: dict[tuple[str, str], dict[str, _ScoreView]] = defaultdict(dict)
    shown = run.current_views(lambda s: _ScoreView(s.value, intern(s.label), s.reason))  # only what the page shows
    for (item_id, cand, metric), view in shown.items():
        scores[(item_id, intern(cand))][intern(metric)] = view
    present = {m for c in summary.candidates for m in c.metrics}
    if calibration is None and run.file("calibration.json").is_file():
        calibration = Calibration.model_validate_json(run.file("calibration.json").read_text(encoding="utf-8"))
    corpus = run.config_snapshot().get("corpus")
    raw_in_store = isinstance(corpus, dict) and corpus.get("redact_pii") is False
    return {
        "guard_items": _guard_items(run, summary, gold.items),
        "raw_in_store": raw_in_store,
        "manifest": manifest,
        "summary": summary,
        "items": gold.items,
        "gens": gens,
        "scores": scores,
        "candidates": [c.candidate for c in summary.candidates],
        "main_metrics": headline_metrics(present),
        "calibration": calibration,
        "retrieval_metrics": catalog.ordered(summary.retrieval) or catalog.names(level="item"),
        "primary": catalog.lead_metric(present),
        "primary_short": catalog.spec(catalog.lead_metric(present)).short,
        "intents": sorted({*summary.retrieval_by_intent, *(i for c in summary.candidates for i in c.by_intent)}),
        "anchors": {item.id: "i-" + re.sub(r"[^A-Za-z0-9_-]", "_", item.id) for item in gold.items},
    }


class _GuardRow(BaseModel):
    item: GoldItem
    question: str
    actions: list[GuardrailAction]


def _guard_items(run: RunDir, summary: RunSummary, items: list[GoldItem]) -> list[_GuardRow]:
    """Items a guardrail stopped, or whose guardrail expectation was not met, with what each guardrail did."""
    wanted = set(summary.guardrail.stopped_items) | {m.item_id for m in summary.guardrail.mismatches}
    wanted |= {i.id for i in items if i.expect_guardrail}
    if not wanted:
        return []
    acts: dict[str, list[GuardrailAction]] = defaultdict(list)
    for a in run.read_jsonl("guardrails.jsonl", GuardrailAction):
        if a.item_id in wanted and not (a.stage == "context" and a.action == "redacted"):  # passage PII: noise here
            acts[a.item_id].append(a)
    return [_GuardRow(item=i, question=i.question, actions=acts[i.id]) for i in items if i.id in wanted][:300]


def render_report(run: RunDir, *, calibration: Calibration | None = None) -> str:
    """The whole report as one page (runs up to INLINE_ITEMS items; `write_report` pages larger ones).
    `calibration`: scorer-vs-human agreement to show instead of the run's calibration.json (the review app's live
    one)."""
    ctx = _context(run, calibration)
    ctx.update(packs={p.item_id: p for p in run.iter_packs()}, pages=[])
    return environment().get_template("report.html.j2").render(**ctx)


def write_report(run: RunDir) -> Path:
    """report.html, plus report-items/page-NNNN.html for large runs. Pages are rendered one at a time from the
    streamed context packs, so memory does not grow with the number of items."""
    ctx = _context(run)
    items = ctx["items"]
    env = environment()
    out = run.file("report.html")
    pages_dir = run.file(PAGES_DIR)
    if pages_dir.is_dir():
        shutil.rmtree(pages_dir)
    if len(items) <= INLINE_ITEMS:
        ctx.update(packs={p.item_id: p for p in run.iter_packs()}, pages=[])
        atomic_write_text(out, env.get_template("report.html.j2").render(**ctx))
        return out
    pages_dir.mkdir()
    n_pages = (len(items) + PAGE_SIZE - 1) // PAGE_SIZE
    names = [f"page-{i + 1:04d}.html" for i in range(n_pages)]
    attention_ids = [
        i.id for i in items if _needs_attention(i.id, ctx["candidates"], ctx["gens"], ctx["scores"], ctx["primary"])
    ]
    shown = set(attention_ids[:ATTENTION_INLINE])
    kept_packs: dict[str, ContextPack] = {}
    page_tpl = env.get_template("report_items.html.j2")
    packs = run.iter_packs()
    for n, name in enumerate(names):
        trim()
        chunk = items[n * PAGE_SIZE : (n + 1) * PAGE_SIZE]
        wanted = {i.id for i in chunk}
        page_packs: dict[str, ContextPack] = {}
        while len(page_packs) < len(wanted):
            pack = next(packs)
            if pack.item_id in wanted:
                page_packs[pack.item_id] = pack
                if pack.item_id in shown:
                    kept_packs[pack.item_id] = pack
        html = page_tpl.render(
            **{**ctx, "items": chunk, "packs": page_packs},
            page=_Page(href=name, first=n * PAGE_SIZE + 1, last=n * PAGE_SIZE + len(chunk)),
            n_items=len(items),
            prev=names[n - 1] if n > 0 else "",
            next=names[n + 1] if n + 1 < n_pages else "",
        )
        atomic_write_text(pages_dir / name, html)
    ctx.update(
        packs=kept_packs,
        attention=[i for i in items if i.id in shown],
        n_attention=len(attention_ids),
        page_size=PAGE_SIZE,
        pages=[
            _Page(href=f"{PAGES_DIR}/{name}", first=n * PAGE_SIZE + 1, last=min(len(items), (n + 1) * PAGE_SIZE))
            for n, name in enumerate(names)
        ],
    )
    atomic_write_text(out, env.get_template("report.html.j2").render(**ctx))
    return out

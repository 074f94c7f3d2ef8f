"""What the pages and the JSON API show, computed once for both: the filtered and sorted run list, a comparison with
the human preference beside it, the trend data, an item across runs, and live scorer-vs-human agreement."""

from __future__ import annotations

from typing import Literal

import plotly.io as pio
from pydantic import BaseModel, Field

from ragharness.analysis.compare import Comparison, compare, pick_candidates
from ragharness.analysis.labels import Calibration, HumanLabel, agreement_with
from ragharness.analysis.preferences import Preference, latest_votes, preference
from ragharness.core.errors import RunError
from ragharness.reporting import trends
from ragharness.runs.history import MetricRow, RunRow
from ragharness.runs.pins import read_pins
from ragharness.runs.summary import RunSummary
from ragharness.serve.catalog import ItemOutcome, RunEntry
from ragharness.serve.reviews import Pair, labels_of, votes_of
from ragharness.serve.state import ServeState

SORT_KEYS = ("started_at", "name", "run_id", "gate", "cost_usd", "status")


class RunList(BaseModel):
    runs: list[RunEntry]
    total: int = Field(description="Runs in the store before filtering.")
    pinned: dict[str, str] = Field(default_factory=dict, description="Evaluation name -> pinned baseline run id.")


class RunFilter(BaseModel):
    """The run list's query: free text, evaluation, verdict, candidate; sort key and order."""

    q: str = Field("", description="Text in the run id, evaluation, verdict, config hash, candidate or prompt.")
    name: str = ""
    gate: str = Field("", description="Nightly verdict, or the run's status when it had no gate.")
    candidate: str = ""
    sort: str = Field("started_at", description=f"One of {', '.join(SORT_KEYS)} or metric:<name>.")
    order: Literal["asc", "desc"] = "desc"


def run_list(state: ServeState, f: RunFilter) -> RunList:
    entries = state.catalog.entries()
    total = len(entries)
    q, name, gate, candidate, sort, order = f.q, f.name, f.gate, f.candidate, f.sort, f.order
    ql = q.strip().lower()

    def keep(e: RunEntry) -> bool:
        if name and e.name != name:
            return False
        if gate and (e.gate or e.status) != gate:
            return False
        if candidate and all(c.candidate != candidate for c in e.candidates):
            return False
        if ql:
            hay = " ".join(
                [
                    e.run_id,
                    e.name,
                    e.gate,
                    e.status,
                    e.config_hash,
                    *(f"{c.candidate} {c.prompt}" for c in e.candidates),
                ]
            ).lower()
            return ql in hay
        return True

    chosen = [e for e in entries if keep(e)]
    if sort in SORT_KEYS:
        chosen.sort(key=lambda e: (getattr(e, sort), e.run_id), reverse=order == "desc")
    elif sort.startswith("metric:"):  # a headline metric: the best candidate's value
        metric = sort.removeprefix("metric:")

        def best(e: RunEntry) -> float:
            vals = [c.metrics.get(metric) for c in e.candidates]
            return max((v for v in vals if v is not None), default=-1.0)

        chosen.sort(key=best, reverse=order == "desc")
    pins = {n: p.run_id for n, p in read_pins(state.store).pins.items()}
    return RunList(runs=chosen, total=total, pinned=pins)


class ComparisonView(BaseModel):
    comparison: Comparison
    human: Preference
    same_run: bool


def _scores(state: ServeState, run_id: str, candidate: str) -> dict[str, float]:
    """item -> the candidate's correctness value (the automatic side of a preference)."""
    outcomes = state.catalog.outcomes(run_id)
    return {i: o.value for (i, c), o in outcomes.items() if c == candidate and o.value is not None}


def human_preference(state: ServeState, pair: Pair) -> Preference:
    votes = latest_votes(votes_of(state.store, pair[2]), pair)
    return preference(votes, _scores(state, pair[0], pair[1]), _scores(state, pair[2], pair[3]))


def comparison(
    state: ServeState, run_a: str, run_b: str, cand_a: str | None, cand_b: str | None, alpha: float = 0.05
) -> ComparisonView:
    a, b = state.catalog.open(run_a), state.catalog.open(run_b)
    ca, cb = pick_candidates(a, b, cand_a or None, cand_b or None)
    key = ("compare", run_a, state.catalog.version(run_a), run_b, state.catalog.version(run_b), ca, cb, alpha)
    result = state.catalog.cached(key, lambda: compare(a, b, ca, cb, alpha=alpha))
    human = human_preference(state, (run_a, ca, run_b, cb))
    return ComparisonView(comparison=result, human=human, same_run=run_a == run_b)


class TrendData(BaseModel):
    runs: list[RunRow]
    metrics: list[MetricRow]


def trend_rows(state: ServeState, name: str = "") -> tuple[dict[str, RunRow], list[MetricRow]]:
    state.catalog.refresh()

    def read() -> tuple[dict[str, RunRow], list[MetricRow]]:
        with state.catalog.lock:
            return (
                {r.run_id: r for r in state.catalog.index.runs(name or None)},
                state.catalog.index.metrics(name or None),
            )

    return state.catalog.cached(("trend-rows", state.catalog.generation, name), read)


def trend_figures(state: ServeState, name: str = "", candidate: str = "", prompt: str = "") -> list[str]:
    """Each chart as plotly JSON, made safe to sit inside a <script type="application/json"> element."""
    runs, rows = trend_rows(state, name)
    if not runs:
        return []

    def build() -> list[str]:
        figs = trends.figures(runs, rows, candidate=candidate or None, prompt=prompt or None)
        out = []
        for f in figs:
            text = pio.to_json(f, validate=False, engine="json")
            out.append(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
        return out

    return state.catalog.cached(("trends", state.catalog.generation, name, candidate, prompt), build)


def trend_choices(state: ServeState, name: str = "") -> tuple[list[str], list[str], list[str]]:
    _, rows = trend_rows(state, name)
    names = sorted({e.name for e in state.catalog.entries() if e.name})
    cands = sorted({r.candidate for r in rows if r.candidate})
    prompts = sorted({r.prompt for r in rows if r.prompt})
    return names, cands, prompts


class ItemRun(BaseModel):
    run_id: str
    started_at: str
    gate: str
    outcomes: dict[str, ItemOutcome]
    context_hash: str
    context_changed: bool = False
    regressed: list[str] = Field(default_factory=list, description="Candidates correct in the run before, not here.")


def item_history(state: ServeState, run_id: str, item_id: str) -> list[ItemRun]:
    """The item in every readable run of the same evaluation, oldest first, with where it regressed and where
    its locked context changed."""
    this = state.catalog.entry(run_id)
    runs = [e for e in state.catalog.entries() if e.readable and e.name == this.name]
    runs.sort(key=lambda e: (e.started_at, e.run_id))
    out: list[ItemRun] = []
    for e in runs:
        try:
            outcomes = state.catalog.outcomes(e.run_id)
            hashes = state.catalog.context_hashes(e.run_id)
        except RunError:
            continue
        if item_id not in hashes:
            continue
        row = ItemRun(
            run_id=e.run_id,
            started_at=e.started_at,
            gate=e.gate,
            outcomes={c: o for (i, c), o in outcomes.items() if i == item_id},
            context_hash=hashes[item_id],
        )
        if out:
            prev = out[-1]
            row.context_changed = prev.context_hash != row.context_hash
            row.regressed = [
                c
                for c, o in row.outcomes.items()
                if c in prev.outcomes and prev.outcomes[c].label == "correct" and o.label != "correct"
            ]
        out.append(row)
    return out


def agreement(state: ServeState, run_id: str, labels: list[HumanLabel] | None = None) -> Calibration | None:
    """Scorer-vs-human agreement from the run's labels (`labels`: already read by the caller), None without any."""
    labels = labels_of(state.store, run_id) if labels is None else labels
    if not labels:
        return None
    run = state.catalog.open(run_id)
    return agreement_with(run, labels)


def summary(state: ServeState, run_id: str) -> RunSummary:
    entry = state.catalog.entry(run_id)
    if not entry.readable:
        raise RunError(f"run {run_id} is incomplete: {entry.problem}")

    def read() -> RunSummary:
        run = state.store.fetch(run_id, ("run.json", "summary.json"))
        return run.read_model("summary.json", RunSummary, f"re-score the run (`ragharness score {run_id}`)")

    return state.catalog.cached(("summary", run_id, state.catalog.version(run_id)), read)

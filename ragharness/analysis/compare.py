"""A/B comparison of two candidates (two runs, or two candidates of one run) on the same gold items: paired per
metric and per intent, bootstrap CIs, McNemar's exact test, Holm correction, MDE, win/loss/tie; JSON + HTML."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field

from ragharness.analysis.stats import PairedResult, holm, paired
from ragharness.core.errors import RunError
from ragharness.core.types import Generation, GoldItem, GuardrailAction, Passage, Score
from ragharness.runs.rundir import RunDir
from ragharness.scoring import metrics as catalog
from ragharness.scoring.thresholds import ScorerThresholds, load_thresholds


def run_thresholds(run: RunDir) -> ScorerThresholds:
    """The scorers' thresholds a run was scored with: the shipped ones plus the run's `scoring:` overrides."""
    return load_thresholds(run.scoring_overrides())


class MetricComparison(BaseModel):
    metric: str
    intent: str = Field("", description="'' for all items.")
    result: PairedResult


class ChangedItem(BaseModel):
    item_id: str
    intent: str
    question: str
    label_a: str
    label_b: str
    answer_a: str
    answer_b: str
    scores_a: dict[str, Score]
    scores_b: dict[str, Score]
    passages_a: list[Passage] = Field(default_factory=list, description="The locked context A answered from.")
    passages_b: list[Passage] = Field(default_factory=list, description="The locked context B answered from.")
    same_context: bool = Field(True, description="Both answered from the identical locked context (one hash).")


class BlockChange(BaseModel):
    item_id: str
    question: str
    answerable: bool
    decision_a: str
    decision_b: str


class Comparison(BaseModel):
    run_a: str
    run_b: str
    candidate_a: str
    candidate_b: str
    n_items: int
    alpha: float
    metrics: list[MetricComparison]
    by_intent: list[MetricComparison]
    changed: list[ChangedItem]
    changed_metric: str = Field("correctness", description="The correctness figure `changed` follows.")
    guardrails: list[MetricComparison] = Field(
        default_factory=list,
        description="Paired tests on block decisions: share of items a guardrail stopped (input, output, any) or "
        "whose context lost a passage; B - A > 0 means B blocks more.",
    )
    guardrail_changes: list[BlockChange] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def significant_drops(self, metrics: list[str] | None = None) -> list[MetricComparison]:
        return [
            m
            for m in self.metrics
            if m.result.significant and m.result.diff < 0 and (metrics is None or m.metric in metrics)
        ]


class _Side(BaseModel):
    run_id: str
    candidate: str
    items: dict[str, GoldItem]
    scores: dict[tuple[str, str], Score]
    generations: dict[str, Generation]
    gold_hash: str
    dropped: set[str] = Field(default_factory=set, description="Items whose context lost a passage to a guardrail.")


def _side(run: RunDir, candidate: str) -> _Side:
    gold = run.goldset()
    latest = run.current_scores()
    scores = {(i, m): s for (i, c, m), s in latest.items() if c in (candidate, "")}  # item-level scores are shared
    all_gens = run.generations()
    gens = {g.item_id: g for g in all_gens if g.candidate == candidate}
    if not gens:
        names = sorted({g.candidate for g in all_gens})
        raise RunError(f"{run.path}: no candidate {candidate!r} in this run; it has {names}")
    missing = [i.id for i in gold.items if i.id not in gens]
    pending = run.manifest().pending
    if missing or pending:
        raise RunError(
            f"{run.file('generations.jsonl')}: candidate {candidate!r} has no answer for {len(missing) or pending} "
            f"of {len(gold.items)} items (first: {missing[:3]}); an incomplete run cannot be compared. Finish it "
            f"with `ragharness run CONFIG --resume {run.path}`"
        )
    gold_hash = hashlib.sha256(json.dumps([i.model_dump() for i in gold.items], sort_keys=True).encode()).hexdigest()
    dropped = {
        a.item_id
        for a in run.read_jsonl("guardrails.jsonl", GuardrailAction)
        if a.stage == "context" and a.action in ("blocked", "failed")
    }
    return _Side(
        run_id=run.manifest().run_id,
        candidate=candidate,
        items={i.id: i for i in gold.items},
        scores=scores,
        generations=gens,
        gold_hash=gold_hash,
        dropped=dropped,
    )


def _decision(side: _Side, item_id: str) -> str:
    g = side.generations.get(item_id)
    if g is not None and g.guardrail_outcome:
        return f"{g.guardrail_outcome} at {g.guardrail_stage} ({g.blocked_by})"
    return "dropped a passage" if item_id in side.dropped else "pass"


def compare_guardrails(a: _Side, b: _Side, common: list[str], alpha: float) -> list[MetricComparison]:
    """McNemar's exact test on each block decision, paired by item, Holm-corrected across the decisions."""

    def stopped(side: _Side, i: str, stage: str) -> bool:
        g = side.generations.get(i)
        if stage == "context":
            return i in side.dropped
        return g is not None and bool(g.guardrail_outcome) and stage in ("any", g.guardrail_stage)

    out = []
    for stage in ("any", "input", "output", "context"):
        xa = [stopped(a, i, stage) for i in common]
        xb = [stopped(b, i, stage) for i in common]
        if not any(xa) and not any(xb):
            continue
        res = paired([float(x) for x in xa], [float(x) for x in xb], xa, xb)
        out.append(MetricComparison(metric=f"guardrail_stopped:{stage}", result=res))
    for mc, p in zip(out, holm([m.result.p_value for m in out]), strict=True):
        mc.result.p_holm = p
        mc.result.significant = p < alpha
    return out


def pick_candidates(run_a: RunDir, run_b: RunDir, cand_a: str | None, cand_b: str | None) -> tuple[str, str]:
    names_a = run_a.manifest().candidates
    names_b = run_b.manifest().candidates
    if cand_a and cand_b:
        return cand_a, cand_b
    if run_a.path == run_b.path:
        raise RunError("comparing two candidates of one run: name them with --candidate-a and --candidate-b")
    common = [n for n in names_a if n in names_b]
    if cand_a or cand_b:
        name = cand_a or cand_b or ""
        return name, name
    if len(common) == 1:
        return common[0], common[0]
    if len(names_a) == 1 and len(names_b) == 1:
        return names_a[0], names_b[0]
    raise RunError(f"which candidates? run A has {names_a}, run B has {names_b}; pass --candidate-a/--candidate-b")


def compare(
    run_a: RunDir,
    run_b: RunDir,
    cand_a: str,
    cand_b: str,
    *,
    alpha: float = 0.05,
    thresholds: ScorerThresholds | None = None,
) -> Comparison:
    """Paired comparison of two candidates. `thresholds` decide the binary outcomes (default: run B's own
    `scoring:` overrides, as it was scored)."""
    a, b = _side(run_a, cand_a), _side(run_b, cand_b)
    warnings = []
    if a.gold_hash != b.gold_hash:
        warnings.append("the two runs used different gold sets; only items present in both (same id) are paired")
    common = [i for i in a.items if i in b.items]
    faithful_min = (thresholds or run_thresholds(run_b)).groundedness_faithful_min
    overall: list[MetricComparison] = []
    per_intent: list[MetricComparison] = []
    for metric in catalog.names(compared=True):
        spec = catalog.spec(metric)
        pairs = [(i, a.scores.get((i, metric)), b.scores.get((i, metric))) for i in common]
        usable = [
            (i, sa, sb)
            for i, sa, sb in pairs
            if sa is not None and sb is not None and sa.value is not None and sb.value is not None
        ]
        if not usable:
            continue

        def result(rows: list[tuple[str, Score, Score]], m: catalog.MetricSpec = spec) -> PairedResult:
            return paired(
                [ra.value or 0.0 for _, ra, _ in rows],
                [rb.value or 0.0 for _, _, rb in rows],
                [m.success(ra, faithful_min) for _, ra, _ in rows],
                [m.success(rb, faithful_min) for _, _, rb in rows],
            )

        overall.append(MetricComparison(metric=metric, result=result(usable)))
        for intent in sorted({a.items[i].intent for i, _, _ in usable}):
            rows = [r for r in usable if a.items[r[0]].intent == intent]
            per_intent.append(MetricComparison(metric=metric, intent=intent, result=result(rows)))
    for family in (overall, per_intent):
        for mc, p in zip(family, holm([m.result.p_value for m in family]), strict=True):
            mc.result.p_holm = p
            mc.result.significant = p < alpha
    changed = []
    primary = catalog.lead_metric({m for _, m in a.scores} & {m for _, m in b.scores})
    for i in common:
        sa, sb = a.scores.get((i, primary)), b.scores.get((i, primary))
        ga, gb = a.generations.get(i), b.generations.get(i)
        if sa is None or sb is None or ga is None or gb is None or sa.label == sb.label:
            continue
        changed.append(
            ChangedItem(
                item_id=i,
                intent=a.items[i].intent,
                question=a.items[i].question,
                label_a=sa.label,
                label_b=sb.label,
                answer_a=ga.text or (ga.error.message if ga.error else ""),
                answer_b=gb.text or (gb.error.message if gb.error else ""),
                scores_a={m: s for (j, m), s in a.scores.items() if j == i},
                scores_b={m: s for (j, m), s in b.scores.items() if j == i},
            )
        )
    if changed:
        wanted = {c.item_id for c in changed}
        packs_a = {p.item_id: p for p in run_a.iter_packs() if p.item_id in wanted}
        packs_b = (
            packs_a if run_b.path == run_a.path else {p.item_id: p for p in run_b.iter_packs() if p.item_id in wanted}
        )
        for c in changed:
            pa, pb = packs_a.get(c.item_id), packs_b.get(c.item_id)
            c.passages_a = list(pa.passages) if pa else []
            c.passages_b = list(pb.passages) if pb else []
            c.same_context = pa is not None and pb is not None and pa.content_hash == pb.content_hash
    guard_changes = [
        BlockChange(
            item_id=i,
            question=a.items[i].question,
            answerable=a.items[i].answerable,
            decision_a=_decision(a, i),
            decision_b=_decision(b, i),
        )
        for i in common
        if _decision(a, i) != _decision(b, i)
    ]
    return Comparison(
        guardrails=compare_guardrails(a, b, common, alpha),
        guardrail_changes=guard_changes,
        run_a=a.run_id,
        run_b=b.run_id,
        candidate_a=cand_a,
        candidate_b=cand_b,
        n_items=len(common),
        alpha=alpha,
        metrics=overall,
        by_intent=per_intent,
        changed=changed,
        changed_metric=primary,
        warnings=warnings,
    )

"""`retrieval-eval --sweep FILE`: a small grid of retrieval settings (mode, k, text analysis, fusion and its
weights) run side by side on one gold set, each against the config's current setting with paired statistics, so
a retrieval change is chosen with evidence.

The sweep file lists settings and/or a grid whose keys are `mode`, `k`, `text_analysis.<field>` and
`fusion.<field>` (every combination is run):

    settings:
      - {name: bm25-no-stemming, mode: bm25, text_analysis: {stem: false, stop_words: false}}
    grid:
      mode: [hybrid]
      fusion.method: [rrf, linear]
      fusion.bm25_weight: [0.2, 0.5]

Each setting is applied on top of the config's `retrieval` section. The query vectors are embedded once; a
setting with other text analysis searches a copy of the store whose text index uses it (vectors copied, nothing
re-embedded; the embedded store only: OpenSearch needs a re-index for that).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragharness.analysis.retrieval import measure
from ragharness.analysis.stats import holm, paired
from ragharness.core.errors import ConfigError
from ragharness.core.progress import NO_PROGRESS, Progress
from ragharness.core.types import GoldItem
from ragharness.core.yamlio import load_strict
from ragharness.retrieval.embedders import Embedder
from ragharness.retrieval.settings import RetrievalConfig, TextAnalysis
from ragharness.retrieval.store import SearchRequest, VectorStore, merge_filters

BASELINE = "current"


@runtime_checkable
class AnalysisCopies(Protocol):
    """A store that can make a copy of itself whose text index uses other analysis settings (LanceDB)."""

    def with_analysis(self, analysis: TextAnalysis, path: Path) -> VectorStore: ...


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settings: list[dict[str, Any]] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict)


class Setting(BaseModel):
    name: str
    retrieval: RetrievalConfig


class SettingResult(BaseModel):
    name: str
    mode: str
    k: int
    text_analysis: dict[str, Any]
    fusion: dict[str, Any]
    overall: dict[str, float]
    by_intent: dict[str, dict[str, float]]
    latency_p50_ms: float
    latency_p95_ms: float
    vs_current: dict[str, Any] | None = Field(None, description="Paired nDCG difference against the current setting.")
    per_item: dict[str, dict[str, float]] = Field(default_factory=dict)


class SweepResult(BaseModel):
    store: str
    embedder: str
    n_items: int
    settings: list[SettingResult]


def _apply(base: RetrievalConfig, change: dict[str, Any], where: str) -> RetrievalConfig:
    data = base.model_dump(mode="json")
    for key, value in change.items():
        if key == "name":
            continue
        if key in ("text_analysis", "fusion") and isinstance(value, dict):
            data[key] = {**data[key], **value}
        elif "." in key:
            section, field = key.split(".", 1)
            if section not in ("text_analysis", "fusion"):
                raise ConfigError(f"{where}: {key!r}: only text_analysis.<field> and fusion.<field> take dots")
            data[section] = {**data[section], field: value}
        elif key in ("mode", "k"):
            data[key] = value
        else:
            raise ConfigError(f"{where}: {key!r}: a setting may change mode, k, text_analysis and fusion")
    try:
        return RetrievalConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def load_sweep(path: Path, base: RetrievalConfig) -> list[Setting]:
    """The current setting first, then the file's settings and every combination of its grid (names made from
    what changes when not given)."""
    try:
        raw = load_strict(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep file ({exc})") from exc
    try:
        sweep = SweepFile.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    changes = [dict(s) for s in sweep.settings]
    if sweep.grid:
        keys = list(sweep.grid)
        changes += [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*sweep.grid.values())]
    if not changes:
        raise ConfigError(f"{path}: no settings: give `settings:` and/or `grid:`")
    out = [Setting(name=BASELINE, retrieval=base)]
    for n, change in enumerate(changes):
        name = str(change.get("name") or ", ".join(f"{k}={v}" for k, v in change.items()))
        out.append(Setting(name=name, retrieval=_apply(base, change, f"{path}: setting {n + 1} ({name})")))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two settings share a name; names: {names}")
    return out


def run_sweep(
    items: Sequence[GoldItem],
    embedder: Embedder,
    store: VectorStore,
    settings: Sequence[Setting],
    workdir: Path,
    progress: Progress = NO_PROGRESS,
) -> SweepResult:
    scored = [i for i in items if i.expected_sources]
    vectors = embedder.embed([i.question for i in scored]) if scored else []
    stores: dict[str, VectorStore] = {}
    base_analysis = settings[0].retrieval.text_analysis

    def store_for(analysis: TextAnalysis) -> VectorStore:
        if analysis == base_analysis:
            return store
        key = analysis.signature()
        if key not in stores:
            if not isinstance(store, AnalysisCopies):
                raise ConfigError(
                    f"{store.name}: sweeping text_analysis needs the embedded store (LanceDB); with OpenSearch, "
                    "change retrieval.text_analysis and run `ragharness ingest` (it re-indexes), then evaluate"
                )
            stores[key] = store.with_analysis(analysis, workdir / f"analysis-{key}")
        return stores[key]

    results: list[SettingResult] = []
    for setting in settings:
        r = setting.retrieval

        def request(item: GoldItem, vec: Sequence[float], r: RetrievalConfig = r) -> SearchRequest:
            filters = merge_filters(r.filters, item.filters)
            return SearchRequest(
                mode=r.mode, k=r.k, text=item.question, vector=tuple(vec), filters=filters, fusion=r.fusion
            )

        got = measure(store_for(r.text_analysis), scored, vectors, request, r.k, progress, setting.name[:24])
        results.append(
            SettingResult(
                name=setting.name,
                mode=r.mode.value,
                k=r.k,
                text_analysis=r.text_analysis.model_dump(),
                fusion=r.fusion.model_dump(),
                **got.model_dump(exclude={"ranked"}),
            )
        )
    _compare(results)
    return SweepResult(store=store.name, embedder=embedder.name, n_items=len(scored), settings=results)


def _compare(results: list[SettingResult]) -> None:
    """Each setting against the current one, item by item: nDCG difference with a paired bootstrap CI, McNemar
    on hit@k, Holm across the settings."""
    base = results[0]
    ids = sorted(base.per_item)
    tests = []
    for res in results[1:]:
        a = [base.per_item[i]["ndcg"] for i in ids]
        b = [res.per_item[i]["ndcg"] for i in ids]
        tests.append(
            paired(a, b, [base.per_item[i]["hit"] > 0 for i in ids], [res.per_item[i]["hit"] > 0 for i in ids])
        )
    adjusted = holm([t.p_value for t in tests]) if tests else []
    for res, test, p_holm in zip(results[1:], tests, adjusted, strict=True):
        test.p_holm = p_holm
        test.significant = p_holm < 0.05 and not (test.ci_low <= 0 <= test.ci_high)
        res.vs_current = test.model_dump()

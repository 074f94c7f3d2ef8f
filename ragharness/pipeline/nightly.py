"""The nightly gate: run, compare with a baseline, decide, report.

Verdicts (and exit codes): `incomplete` (4) when calls failed for good; `below_threshold` (1) when an absolute
threshold fails; `regressed` (5) when a gated metric dropped significantly against the baseline (McNemar, Holm,
alpha); `pass` (0) otherwise, including drops within noise, which are reported as such. A lock stops two
nightly runs on the same store at once (exit 6). Writes JUnit XML (one test case per gate), a Markdown summary,
and optionally posts it to a webhook (URL from an environment reference).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from ragharness.analysis.compare import Comparison, compare
from ragharness.core.errors import RunError
from ragharness.core.fileio import atomic_write_text
from ragharness.core.locking import exclusive
from ragharness.core.progress import Log, room_log
from ragharness.core.settings import resolve_env
from ragharness.pipeline.config import HarnessConfig
from ragharness.pipeline.evaluation import execute_run
from ragharness.reporting.jinja import cost_text
from ragharness.runs.history import HistoryIndex
from ragharness.runs.pins import read_pins
from ragharness.runs.rundir import GateVerdict, RunDir
from ragharness.runs.store import LocalRunStore, RunStore, check_run_id, open_run_store
from ragharness.runs.summary import RunSummary

EXIT = {"pass": 0, "below_threshold": 1, "incomplete": 4, "regressed": 5}

_LOG = room_log(__name__)


class GateCase(BaseModel):
    name: str
    passed: bool
    message: str


class NightlyResult(BaseModel):
    verdict: GateVerdict
    exit_code: int
    run_dir: Path
    baseline: str = ""
    cases: list[GateCase]
    comparisons: list[Comparison]
    markdown: str
    notes: list[str] = []


@contextmanager
def nightly_lock(path: Path) -> Iterator[None]:
    with exclusive(path, "nightly run", who="another nightly run"):
        yield


def _store(cfg: HarnessConfig) -> RunStore:
    target = cfg.nightly.run_store
    if target:
        return open_run_store(resolve_env(target, what="nightly.run_store"), cfg.resolve(cfg.data_dir) / "run-cache")
    return LocalRunStore(cfg.resolve(cfg.output_dir))


def junit_xml(cases: list[GateCase], suite: str) -> str:
    root = ET.Element(
        "testsuite", name=suite, tests=str(len(cases)), failures=str(sum(1 for c in cases if not c.passed))
    )
    for case in cases:
        el = ET.SubElement(root, "testcase", classname=suite, name=case.name)
        if not case.passed:
            ET.SubElement(el, "failure", message=case.message).text = case.message
        else:
            ET.SubElement(el, "system-out").text = case.message
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def markdown_summary(
    verdict: GateVerdict,
    summary: RunSummary,
    run_dir: Path,
    baseline: str,
    comparisons: list[Comparison],
    cases: list[GateCase],
) -> str:
    icon = {
        "pass": "PASS",
        "below_threshold": "FAIL (below threshold)",
        "regressed": "FAIL (regressed)",
        "incomplete": "FAIL (incomplete run)",
    }[verdict]
    lines = [
        f"## ragharness nightly · {summary.name}: {icon}",
        "",
        f"run `{summary.run_id}` · baseline `{baseline or 'none'}` · report `{run_dir / 'report.html'}`",
        "",
    ]
    lines += [
        "| candidate | metric | baseline | tonight | change | 95 % CI | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        for m in c.metrics:
            r = m.result
            verdict_m = ("significant drop" if r.diff < 0 else "significant gain") if r.significant else "within noise"
            lines.append(
                f"| {c.candidate_b} | {m.metric} | {r.mean_a:.3f} | {r.mean_b:.3f} | {r.diff:+.3f} | "
                f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}] | {verdict_m} |"
            )
    if not comparisons:
        for cand in summary.candidates:
            for name, ms in cand.metrics.items():
                if ms.mean is not None:
                    lines.append(f"| {cand.candidate} | {name} | – | {ms.mean:.3f} | – | – | no baseline |")
    lines += [
        "",
        "| candidate | calls | cached | cost USD | latency p50 / p95 ms | TTFT p50 / p95 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for cand in summary.candidates:  # what tonight's calls cost and took: unknown shown as unknown, never 0
        lat = _pair(cand.value("latency_p50_ms"), cand.value("latency_p95_ms"))
        ttft = _pair(cand.value("ttft_p50_ms"), cand.value("ttft_p95_ms"))  # a dash when no call streamed
        cost = cost_text(cand.cost_usd, cand.unpriced, cand.calls)
        row = (cand.candidate, cand.calls, cand.cached, cost, lat, ttft, cand.errors)
        lines.append("| " + " | ".join(map(str, row)) + " |")
    failed = [c for c in cases if not c.passed]
    lines += ["", f"{len(cases) - len(failed)}/{len(cases)} gates passed."]
    lines += [f"- FAILED {c.name}: {c.message}" for c in failed]
    return "\n".join(lines) + "\n"


def _comparisons(
    cfg: HarnessConfig, run: RunDir, store: RunStore, index: HistoryIndex, pinned: str | None, notes: list[str]
) -> tuple[str, list[Comparison]]:
    settings = cfg.nightly
    base_id = pinned or (settings.baseline if settings.baseline != "last-pass" else None)
    if base_id is None:
        row = index.baseline(cfg.name, exclude=run.manifest().run_id)
        base_id = row.run_id if row else None
    if not base_id:
        notes.append("no baseline yet (no earlier passing run): regression gates not evaluated")
        return "", []
    try:
        base_run = store.open(base_id)
    except RunError as exc:
        raise RunError(f"baseline {base_id}: {exc}") from exc
    shared = [c for c in run.manifest().candidates if c in base_run.manifest().candidates]
    if not shared:
        notes.append(f"baseline {base_id} has none of tonight's candidates; nothing to compare")
    return base_id, [compare(base_run, run, c, c, alpha=settings.alpha) for c in shared]


def gate_cases(summary: RunSummary, comparisons: list[Comparison], metrics: list[str]) -> list[GateCase]:
    failed_calls = sum(c.errors for c in summary.candidates)
    cases = [
        GateCase(
            name="complete",
            passed=summary.complete,
            message="all calls succeeded"
            if summary.complete
            else f"{failed_calls} failed call(s), {summary.pending} pending",
        )
    ]
    cases += [
        GateCase(name=f"threshold {g.metric} {g.candidate}", passed=g.passed, message=g.message) for g in summary.gates
    ]
    for c in comparisons:
        for m in c.metrics:
            if m.metric not in metrics:
                continue
            r = m.result
            dropped = r.significant and r.diff < 0
            how = "significant drop" if dropped else ("within noise" if r.diff < 0 else "no drop")
            msg = (
                f"{m.metric} {r.mean_a:.3f} -> {r.mean_b:.3f} ({r.diff:+.3f}, 95% CI [{r.ci_low:+.3f}, "
                f"{r.ci_high:+.3f}], Holm p={r.p_holm:.4f}): {how}"
            )
            cases.append(GateCase(name=f"regression {m.metric} {c.candidate_b}", passed=not dropped, message=msg))
    return cases


def verdict_of(summary: RunSummary, cases: list[GateCase]) -> GateVerdict:
    if not summary.complete:
        return "incomplete"
    if not all(g.passed for g in summary.gates):
        return "below_threshold"
    if any(not c.passed for c in cases if c.name.startswith("regression")):
        return "regressed"
    return "pass"


def run_nightly(
    cfg: HarnessConfig,
    *,
    baseline: str | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
    log: Log = _LOG,
) -> NightlyResult:
    # Everything that can fail on configuration fails here, before any model call.
    if cfg.nightly.webhook:
        resolve_env(cfg.nightly.webhook, what=f"{cfg.source_file}: nightly.webhook")
    store = _store(cfg)
    pinned = baseline or (cfg.nightly.baseline if cfg.nightly.baseline != "last-pass" else None)
    if pinned is None:  # an admin's pin in the run store (review app) replaces 'last-pass'
        pin = read_pins(store).pins.get(cfg.name)
        pinned = baseline = pin.run_id if pin else None
        if pin:
            log(f"baseline pinned in the run store: {pin.run_id} (by {pin.by} at {pin.at})")
    if pinned and pinned not in store.list_runs():
        check_run_id(pinned, store.location)
        raise RunError(f"baseline {pinned!r}: no such run in the run store {store.location}; pin a run stored there")
    with nightly_lock(cfg.resolve(cfg.data_dir) / "nightly.lock"):
        result = execute_run(cfg, log=log)
        run = RunDir.open(result.run_dir)
        summary = result.summary
        index = HistoryIndex(cfg.resolve(cfg.output_dir) / "history.sqlite", store)
        notes: list[str] = []
        if summary.pending:
            notes.append(f"{summary.pending} call(s) pending: an incomplete run is not compared with the baseline")
            base_id, comparisons = "", list[Comparison]()
        else:
            base_id, comparisons = _comparisons(cfg, run, store, index, baseline, notes)
        cases = gate_cases(summary, comparisons, cfg.nightly.metrics)
        verdict = verdict_of(summary, cases)
        manifest = run.manifest()
        manifest.gate = verdict
        run.write_json("run.json", manifest)
        md = markdown_summary(verdict, summary, run.path, base_id, comparisons, cases)
        if notes:
            md += "\n" + "\n".join(f"_{n}_" for n in notes) + "\n"
        xml = junit_xml(cases, f"ragharness.{cfg.name}")
        atomic_write_text(run.path / "nightly.md", md)
        atomic_write_text(run.path / "nightly-junit.xml", xml)
        for target, text in ((junit, xml), (markdown, md)):
            if target:
                atomic_write_text(target, text)
        store.save(run)
        index.add(run.path, location=f"{store.location}/{manifest.run_id}")
        index.close()
        if cfg.nightly.webhook:
            notes.append(_post_webhook(cfg.nightly.webhook, md))
        return NightlyResult(
            verdict=verdict,
            exit_code=EXIT[verdict],
            run_dir=run.path,
            baseline=base_id,
            cases=cases,
            comparisons=comparisons,
            markdown=md,
            notes=notes,
        )


def _post_webhook(ref: str, text: str) -> str:
    import httpx

    url = resolve_env(ref, what="nightly.webhook")
    try:
        response = httpx.post(url, json={"text": text}, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:  # a notification failure never changes the verdict
        return f"webhook failed: {type(exc).__name__}"
    return f"webhook notified ({response.status_code})"


def _pair(p50: float | None, p95: float | None) -> str:
    return "–" if p50 is None or p95 is None else f"{p50:.0f} / {p95:.0f}"

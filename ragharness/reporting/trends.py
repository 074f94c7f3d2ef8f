"""The trend dashboard: one self-contained HTML page (plotly.js inlined, no CDN) built from the history index.

One figure, every panel sharing the x axis and one legend: each candidate@prompt-version has one colour and one
legend entry across all panels (a click hides it everywhere). Points carry their 95% bootstrap interval as error
bars and the hover shows candidate, prompt version, run, value, n and the interval; runs whose nightly gate found
a significant regression keep a red cross. The x axis is by run (evenly spaced, dated) or by time; changes of
prompt version, model, judge, gold set or corpus (store version) are vertical markers with a label, because they
explain most jumps. A table on top compares the last run with its baseline.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from ragharness.core.fileio import atomic_write_text
from ragharness.runs.history import HistoryIndex, MetricRow, RunRow
from ragharness.scoring import metrics as catalog

QUALITY = tuple(catalog.names(family="answer", compared=True))
XMode = Literal["run", "time"]
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)  # fmt: skip
REGRESSED = "#b3261e"
UNIT = (0.0, 1.05)  # the y range of a rate or score
# (title, metric, y range or None, value format); per candidate@prompt series
OPS_PANELS: tuple[tuple[str, str, tuple[float, float] | None, str], ...] = (
    ("over-refusal (answerable items refused)", "over_refusal", UNIT, ".3f"),
    ("tokens per run (in + out)", "tokens", None, ",.0f"),
    ("cost per run, USD", "cost_usd", None, ".4f"),
    ("cost per 100 items, USD", "cost_per_100_items", None, ".4f"),
    ("latency p50, ms", "latency_p50_ms", None, ",.0f"),
    ("latency p95, ms", "latency_p95_ms", None, ",.0f"),
    ("error rate", "error_rate", UNIT, ".3f"),
)
SPIKE_SIGMAS = 3.0
SPIKE_MIN_HISTORY = 5
SPIKE_WINDOW = 14
SPIKE_SD_FLOOR = 0.01
"""A guardrail action rate is a spike when it exceeds the mean of the trailing SPIKE_WINDOW runs (at least
SPIKE_MIN_HISTORY of them) by more than SPIKE_SIGMAS standard deviations (at least SPIKE_SD_FLOOR, so a flat
history does not make every wobble a spike)."""


def spikes(values: list[float]) -> list[bool]:
    """Which points exceed their trailing runs by more than three standard deviations."""
    out = []
    for i, v in enumerate(values):
        past = values[max(0, i - SPIKE_WINDOW) : i]
        if len(past) < SPIKE_MIN_HISTORY:
            out.append(False)
            continue
        mean = sum(past) / len(past)
        sd = (sum((x - mean) ** 2 for x in past) / (len(past) - 1)) ** 0.5
        out.append(v > mean + SPIKE_SIGMAS * max(sd, SPIKE_SD_FLOOR))
    return out


def series_key(candidate: str, prompt: str) -> str:
    return f"{candidate}@{prompt}"


class _Axis:
    """Where a run sits on the x axis: its position (evenly spaced) or its start time."""

    def __init__(self, runs: dict[str, RunRow], mode: XMode) -> None:
        self.mode = mode
        self.order = sorted(runs.values(), key=lambda r: (r.started_at, r.run_id))
        self.pos = {r.run_id: i for i, r in enumerate(self.order)}
        self.runs = runs

    def x(self, run_id: str) -> float | str:
        return self.pos[run_id] if self.mode == "run" else self.runs[run_id].started_at

    def between(self, run_id: str) -> float | str:
        """Where a change that took effect with this run is marked (half a step before it, by run)."""
        return self.pos[run_id] - 0.5 if self.mode == "run" else self.runs[run_id].started_at

    def ticks(self) -> dict[str, object]:
        if self.mode == "time" or not self.order:
            return {"type": "date"}
        step = max(1, round(len(self.order) / 12))
        shown = self.order[::step]
        return {
            "tickmode": "array",
            "tickvals": [self.pos[r.run_id] for r in shown],
            "ticktext": [r.started_at[:16].replace("T", " ") for r in shown],
            "range": [-0.6, len(self.order) - 0.4],
        }


def _colours(keys: Iterable[str]) -> dict[str, str]:
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sorted(set(keys)))}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


class _Builder:
    def __init__(self, runs: dict[str, RunRow], rows: list[MetricRow], x: XMode) -> None:
        self.axis = _Axis(runs, x)
        self.runs = runs
        self.rows = [r for r in rows if r.run_id in runs]
        self.panels: list[str] = []
        self.ranges: list[tuple[float, float] | None] = []  # per panel: a fixed y range, or None (fit, from 0)
        self.traces: list[tuple[int, go.Scatter]] = []
        self.legend_shown: set[str] = set()
        self.keys = sorted({series_key(r.candidate, r.prompt) for r in self.rows if r.candidate})
        self.colour = _colours(self.keys)  # candidates first; intents and guardrail actions get the next colours

    def colour_of(self, name: str) -> str:
        if name not in self.colour:
            self.colour[name] = PALETTE[len(self.colour) % len(PALETTE)]
        return self.colour[name]

    def panel(self, title: str, y_range: tuple[float, float] | None = None) -> int:
        self.panels.append(title)
        self.ranges.append(y_range)
        return len(self.panels)

    def _legend(self, group: str) -> bool:
        first = group not in self.legend_shown
        self.legend_shown.add(group)
        return first

    def series(self, row: int, name: str, colour: str, points: list[MetricRow], metric: str, spec: str) -> None:
        points = sorted(points, key=lambda p: self.axis.pos[p.run_id])
        if not points:
            return
        xs = [self.axis.x(p.run_id) for p in points]
        ys = [p.value for p in points]
        has_ci = any(p.ci_low is not None for p in points)
        hover = []
        for p in points:
            run = self.runs[p.run_id]
            ci = f", 95% CI {_fmt(p.ci_low, spec)} to {_fmt(p.ci_high, spec)}" if p.ci_low is not None else ""
            who = f"{p.candidate} · prompt {p.prompt}" if p.candidate else name
            gate = f"<br>gate {run.gate}" if run.gate else ""
            hover.append(
                f"{html.escape(who)}<br>run {html.escape(p.run_id)} · {html.escape(run.started_at[:16])}"
                f"<br>{html.escape(metric)}: {_fmt(p.value, spec)} (n {p.n}{ci}){html.escape(gate)}"
            )
        error = None
        if has_ci:
            error = {
                "type": "data",
                "symmetric": False,
                "array": [
                    (p.ci_high - p.value) if p.ci_high is not None and p.value is not None else 0 for p in points
                ],
                "arrayminus": [
                    (p.value - p.ci_low) if p.ci_low is not None and p.value is not None else 0 for p in points
                ],
                "color": colour,
                "thickness": 1,
                "width": 2,
            }
        trace = go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            name=name,
            legendgroup=name,
            showlegend=self._legend(name),
            line={"color": colour, "width": 2},
            marker={"color": colour, "size": 6},
            error_y=error,
            hovertext=hover,
            hoverinfo="text",
            customdata=[p.run_id for p in points],
        )
        self.traces.append((row, trace))
        bad = [p for p in points if self.runs[p.run_id].gate == "regressed" and p.value is not None]
        if bad:
            self.traces.append(
                (
                    row,
                    go.Scatter(
                        x=[self.axis.x(p.run_id) for p in bad],
                        y=[p.value for p in bad],
                        mode="markers",
                        marker={"symbol": "x", "size": 13, "color": REGRESSED},
                        name="regressed run",
                        legendgroup="regressed run",
                        showlegend=self._legend("regressed run"),
                        hovertext=[f"REGRESSED (nightly gate): run {html.escape(p.run_id)}" for p in bad],
                        hoverinfo="text",
                        customdata=[p.run_id for p in bad],
                    ),
                )
            )

    def candidate_panel(
        self, title: str, metric: str, spec: str, pick: set[str] | None, y_range: tuple[float, float] | None = None
    ) -> None:
        by_key: dict[str, list[MetricRow]] = defaultdict(list)
        for r in self.rows:
            key = series_key(r.candidate, r.prompt)
            if r.candidate and r.intent == "" and r.metric == metric and (pick is None or key in pick):
                by_key[key].append(r)
        if not by_key:
            return
        row = self.panel(title, y_range)
        for key in sorted(by_key):
            self.series(row, key, self.colour[key], by_key[key], metric, spec)

    def tokens_panel(self, pick: set[str] | None) -> None:
        parts: dict[tuple[str, str], list[MetricRow]] = defaultdict(list)
        for r in self.rows:
            key = series_key(r.candidate, r.prompt)
            wanted = r.candidate and r.intent == "" and r.metric in ("input_tokens", "output_tokens")
            if wanted and (pick is None or key in pick):
                parts[(key, r.run_id)].append(r)
        if not parts:
            return
        row = self.panel("tokens per run (in + out)")
        by_key: dict[str, list[MetricRow]] = defaultdict(list)
        for (key, _), rs in parts.items():
            total = sum(r.value or 0 for r in rs)
            by_key[key].append(rs[0].model_copy(update={"metric": "tokens", "value": total, "ci_low": None}))
        for key in sorted(by_key):
            self.series(row, key, self.colour[key], by_key[key], "tokens", ",.0f")

    def per_name_panel(
        self,
        title: str,
        groups: dict[str, list[MetricRow]],
        metric_label: str,
        prefix: str,
        y_range: tuple[float, float] | None = None,
    ) -> None:
        if not groups:
            return
        row = self.panel(title, y_range)
        for name in sorted(groups):
            label = f"{prefix}{name}"
            self.series(row, label, self.colour_of(label), groups[name], metric_label, ".3f")

    def changes(self) -> list[tuple[str, str]]:
        """(run id, label) where something that explains a jump changed since the previous run."""
        per_run: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)  # run -> candidate -> (provider, prompt)
        for r in self.rows:
            if r.candidate:
                per_run[r.run_id][r.candidate] = (r.provider, r.prompt)
        out = []
        previous: RunRow | None = None
        for run in self.axis.order:
            if previous is not None:
                labels = []
                before, now = per_run.get(previous.run_id, {}), per_run.get(run.run_id, {})
                for cand in sorted(set(before) & set(now)):
                    if before[cand][1] != now[cand][1]:
                        labels.append(f"prompt {cand}: {before[cand][1]} → {now[cand][1]}")
                    if before[cand][0] != now[cand][0]:
                        labels.append(f"model {cand}: {before[cand][0]} → {now[cand][0]}")
                names = {"judge": "judge", "goldset": "gold set", "store": "corpus/store", "embedder": "embedder"}
                for field, label in names.items():
                    old, new = previous.versions.get(field), run.versions.get(field)
                    if old and new and old != new:
                        labels.append(f"{label} changed")
                if labels:
                    out.append((run.run_id, "; ".join(labels)))
            previous = run
        return out

    def figure(self, title: str) -> go.Figure:
        n = max(1, len(self.panels))
        fig = make_subplots(
            rows=n, cols=1, shared_xaxes=True, subplot_titles=self.panels or ["no runs"], vertical_spacing=0.12 / n
        )
        for row, trace in self.traces:
            fig.add_trace(trace, row=row, col=1)
        for row, y_range in enumerate(self.ranges, start=1):
            if y_range is not None:
                fig.update_yaxes(range=list(y_range), row=row, col=1)
            else:
                fig.update_yaxes(rangemode="tozero", row=row, col=1)
        fig.update_xaxes(**self.axis.ticks())
        fig.update_xaxes(showticklabels=True, row=n, col=1)  # dates under the last panel; hover names the run
        for run_id, label in self.changes():
            x = self.axis.between(run_id)
            fig.add_vline(x=x, line={"color": "#6e7781", "dash": "dot", "width": 1})
            fig.add_annotation(
                x=x,
                y=1.0,
                yref="paper",
                text=html.escape(label),
                showarrow=False,
                textangle=-90,
                xanchor="right",
                yanchor="top",
                font={"size": 10, "color": "#57606a"},
                name="version-change",
            )
        height = max(420, 230 * n)
        fig.update_layout(
            title=title,
            height=height,
            template="plotly_white",
            hovermode="closest",
            # below the panels: a legend of many series wraps into rows, and above it would cover the title
            legend={"orientation": "h", "yanchor": "top", "y": -60 / height, "x": 0},
            margin={"t": 80, "b": 140},
        )
        return fig


def figures(
    runs: dict[str, RunRow],
    rows: list[MetricRow],
    *,
    candidate: str | None = None,
    prompt: str | None = None,
    x: XMode = "run",
) -> list[go.Figure]:
    """The dashboard: one figure whose panels share the x axis and one legend; every point carries its run id as
    customdata (the review app opens it on click)."""
    b = _Builder(runs, rows, x)
    pick = {
        k
        for k in b.keys
        if (not candidate or k.split("@", 1)[0] == candidate) and (not prompt or k.endswith(f"@{prompt}"))
    }
    for metric in QUALITY:
        b.candidate_panel(f"answer quality: {metric}", metric, ".3f", pick, UNIT)
    per_intent: dict[str, list[MetricRow]] = defaultdict(list)
    for r in b.rows:
        if r.metric == "retrieval_hit" and r.candidate == "" and r.intent:
            per_intent[r.intent].append(r)
    b.per_name_panel("retrieval hit rate per intent", per_intent, "retrieval_hit", "retrieval · ", UNIT)
    actions: dict[str, list[MetricRow]] = defaultdict(list)
    for r in b.rows:
        if r.metric.startswith("guardrail:") and r.candidate == "":
            actions[r.metric.removeprefix("guardrail:")].append(r)
    for points in actions.values():  # a run without an action had a rate of 0
        seen = {p.run_id for p in points}
        points += [
            MetricRow(run_id=i, candidate="", provider="", prompt="", intent="", metric="", value=0.0, n=0)
            for i in runs
            if i not in seen
        ]
    b.per_name_panel("guardrail action rates", actions, "rate", "guardrail · ")
    for title, metric, y_range, spec in OPS_PANELS:
        if metric == "tokens":
            b.tokens_panel(pick)
        else:
            b.candidate_panel(title, metric, spec, pick, y_range)
    return [b.figure("Trends per candidate@prompt version (error bars: 95% bootstrap interval over items)")]


def _summary_table(index: HistoryIndex, runs: dict[str, RunRow], rows: list[MetricRow], name: str | None) -> str:
    """Last run against its baseline (the latest passing run before it), per series and headline metric."""
    if not runs:
        return ""
    last = max(runs.values(), key=lambda r: (r.started_at, r.run_id))
    base = index.baseline(last.name, exclude=last.run_id) if (name or last.name) else None
    metrics = (*QUALITY, "cost_per_100_items", "latency_p95_ms", "error_rate")
    value: dict[tuple[str, str, str], float | None] = {}
    for r in rows:
        if r.candidate and r.intent == "" and r.metric in metrics:
            value[(r.run_id, series_key(r.candidate, r.prompt), r.metric)] = r.value
    keys = sorted({k for (run_id, k, _) in value if run_id == last.run_id})
    verdict = last.gate or last.status
    head = (
        f"<p>Last run <strong>{html.escape(last.run_id)}</strong> ({html.escape(last.started_at[:16])}) · verdict "
        f'<span class="{html.escape(verdict)}">{html.escape(verdict or "–")}</span> · baseline '
        f"{html.escape(base.run_id) if base else 'none (no earlier passing run)'}</p>"
    )
    body = []
    for key in keys:
        for metric in metrics:
            now = value.get((last.run_id, key, metric))
            if now is None:
                continue
            before = value.get((base.run_id, key, metric)) if base else None
            delta = "" if before is None else f"{now - before:+.3f}"
            body.append(
                f"<tr><td>{html.escape(key)}</td><td>{html.escape(metric)}</td><td class=num>{now:.3f}</td>"
                f"<td class=num>{'' if before is None else f'{before:.3f}'}</td><td class=num>{delta}</td></tr>"
            )
    return (
        head
        + "<table><tr><th>candidate@prompt</th><th>metric</th><th>last</th><th>baseline</th><th>Δ</th></tr>"
        + "".join(body)
        + "</table>"
    )


def build_dashboard(index: HistoryIndex, out: Path, *, name: str | None = None, x: XMode = "run") -> Path:
    runs = {r.run_id: r for r in index.runs(name)}
    rows = index.metrics(name)
    divs = [
        pio.to_html(f, include_plotlyjs=False, full_html=False, div_id=f"chart-{i}")
        for i, f in enumerate(figures(runs, rows, x=x))
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    links = []
    for r in sorted(runs.values(), key=lambda r: r.started_at, reverse=True):
        report = r.location.rstrip("/") + "/report.html"
        href = Path(report).as_uri() if report.startswith("/") else report
        links.append(
            f'<tr><td>{html.escape(r.started_at)}</td><td><a href="{html.escape(href)}">'
            f"{html.escape(r.run_id)}</a></td><td>{html.escape(r.status)}</td>"
            f'<td class="{html.escape(r.gate)}">{html.escape(r.gate or "–")}</td></tr>'
        )
    title = html.escape(name or "all evaluations")
    axis = "by run (evenly spaced, dated)" if x == "run" else "by time"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragharness trends · {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2430}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d5dae1;padding:.25rem .5rem;font-size:.85rem}}.num{{text-align:right}}
.regressed,.fail,.below_threshold{{color:#b3261e;font-weight:600}}.pass{{color:#1a7f37;font-weight:600}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>Trends · {title}</h1>
<div id="summary">{_summary_table(index, runs, rows, name)}</div>
<p>{len(runs)} runs, x axis {axis}; one colour per candidate@prompt version in every panel (click a legend entry
to hide it everywhere); error bars: 95% bootstrap interval over items; red crosses: runs whose nightly gate found a
significant regression; dotted lines: a prompt, model, judge, gold-set or corpus change.</p>
{"".join(divs)}
<h2>Runs</h2><table id="runs"><tr><th>started</th><th>run (report)</th><th>status</th><th>gate</th></tr>
{"".join(links)}</table>
</body></html>"""
    atomic_write_text(out, page)
    return out

"""The trend dashboard: one self-contained HTML page (plotly.js inlined, no CDN) built from the history index."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from ragharness.fileio import atomic_write_text
from ragharness.runs.history import HistoryIndex, MetricRow, RunRow
from ragharness.scoring import metrics as catalog

QUALITY = tuple(catalog.names(family="answer", compared=True))
OPERATIONS = tuple(catalog.names(family="ops", headline=True))


Point = tuple[str, float, str]


def _series(
    rows: list[MetricRow],
    metrics: tuple[str, ...],
    runs: dict[str, RunRow],
    candidate: str | None = None,
    prompt: str | None = None,
) -> dict[str, dict[str, list[Point]]]:
    """metric -> 'candidate · prompt' -> [(started_at, value, run_id)], optionally one candidate / prompt version"""
    out: dict[str, dict[str, list[Point]]] = {m: defaultdict(list) for m in metrics}
    for r in rows:
        if (candidate and r.candidate != candidate) or (prompt and r.prompt != prompt):
            continue
        if r.metric in metrics and r.intent == "" and r.candidate and r.value is not None and r.run_id in runs:
            out[r.metric][f"{r.candidate} · {r.prompt}"].append((runs[r.run_id].started_at, r.value, r.run_id))
    return out


def _figure(
    title: str,
    metrics: tuple[str, ...],
    series: dict[str, dict[str, list[Point]]],
    runs: dict[str, RunRow],
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, subplot_titles=metrics, vertical_spacing=0.06)
    for row, metric in enumerate(metrics, start=1):
        for name, points in sorted(series[metric].items()):
            xs, ys, ids = zip(*sorted(points), strict=True) if points else ((), (), ())
            text = [f"run {i}<br>status {runs[i].status} {runs[i].gate}" for i in ids]
            fig.add_trace(
                go.Scatter(
                    x=list(xs),
                    y=list(ys),
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=row == 1,
                    hovertext=text,
                    hoverinfo="text+y+name",
                    customdata=list(ids),
                ),
                row=row,
                col=1,
            )
            bad = [(x, y, i) for x, y, i in zip(xs, ys, ids, strict=True) if runs[i].gate == "regressed"]
            if bad:
                marks = _marks(bad, "x", 14, "regressed", "regressed", [f"REGRESSED: run {b[2]}" for b in bad])
                fig.add_trace(marks, row=row, col=1)
        if y_range:
            fig.update_yaxes(range=list(y_range), row=row, col=1)
    fig.update_layout(title=title, height=260 * len(metrics), template="plotly_white", hovermode="closest")
    return fig


def _marks(points: list[Point], symbol: str, size: int, name: str, group: str, hover: list[str]) -> go.Scatter:
    """Red markers over a series' points (a regressed run, a guardrail-rate spike); hidden from the legend."""
    return go.Scatter(
        x=[p[0] for p in points],
        y=[p[1] for p in points],
        mode="markers",
        marker={"symbol": symbol, "size": size, "color": "#b3261e"},
        name=name,
        legendgroup=group,
        showlegend=False,
        hovertext=hover,
        hoverinfo="text+y",
        customdata=[p[2] for p in points],
    )


def _line(name: str, points: list[Point]) -> go.Scatter:
    """One series of (started_at, value, run_id) points, hovering the run id."""
    xs, ys, ids = zip(*points, strict=True)
    return go.Scatter(
        x=list(xs),
        y=list(ys),
        mode="lines+markers",
        name=name,
        legendgroup=name,
        hovertext=[f"run {i}" for i in ids],
        hoverinfo="text+y+name",
        customdata=list(ids),
    )


def _retrieval_figure(rows: list[MetricRow], runs: dict[str, RunRow]) -> go.Figure:
    per_intent: dict[str, list[Point]] = defaultdict(list)
    for r in rows:
        if r.metric == "retrieval_hit" and r.candidate == "" and r.intent and r.value is not None and r.run_id in runs:
            per_intent[r.intent].append((runs[r.run_id].started_at, r.value, r.run_id))
    fig = go.Figure()
    for intent, points in sorted(per_intent.items()):
        fig.add_trace(_line(intent, sorted(points)))
    fig.update_layout(
        title="Retrieval hit rate per intent", height=380, template="plotly_white", yaxis={"range": [0, 1.05]}
    )
    return fig


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


def _guardrail_figure(rows: list[MetricRow], runs: dict[str, RunRow]) -> go.Figure:
    per_action: dict[str, list[Point]] = defaultdict(list)
    for r in rows:
        if r.metric.startswith("guardrail:") and r.candidate == "" and r.value is not None and r.run_id in runs:
            per_action[r.metric.removeprefix("guardrail:")].append((runs[r.run_id].started_at, r.value, r.run_id))
    # every run has a rate for every action seen anywhere: a run without that action had a rate of 0
    for points in per_action.values():
        seen = {p[2] for p in points}
        points += [(runs[i].started_at, 0.0, i) for i in runs if i not in seen]
    fig = go.Figure()
    for action, points in sorted(per_action.items()):
        xs, ys, ids = zip(*sorted(points), strict=True)
        fig.add_trace(_line(action, sorted(points)))
        flagged = [(x, y, i) for x, y, i, hit in zip(xs, ys, ids, spikes(list(ys)), strict=True) if hit]
        if flagged:
            hover = [f"SPIKE (> mean + 3 sd of the trailing runs): {action}, run {f[2]}" for f in flagged]
            fig.add_trace(_marks(flagged, "triangle-up", 15, f"spike: {action}", action, hover))
    fig.update_layout(
        title="Guardrail action rates per run (red triangles: more than 3 standard deviations over the trailing runs)",
        height=380,
        template="plotly_white",
        yaxis={"rangemode": "tozero"},
    )
    return fig


def figures(
    runs: dict[str, RunRow], rows: list[MetricRow], *, candidate: str | None = None, prompt: str | None = None
) -> list[go.Figure]:
    """The dashboard's charts; every point carries its run id as customdata (the review app opens it on click)."""
    out = [
        _figure(
            "Answer quality per candidate and prompt version",
            QUALITY,
            _series(rows, QUALITY, runs, candidate, prompt),
            runs,
            (0, 1.05),
        ),
        _retrieval_figure(rows, runs),
        _figure("Cost, tokens and latency", OPERATIONS, _series(rows, OPERATIONS, runs, candidate, prompt), runs),
    ]
    if any(r.metric.startswith("guardrail:") for r in rows):
        out.append(_guardrail_figure(rows, runs))
    return out


def build_dashboard(index: HistoryIndex, out: Path, *, name: str | None = None) -> Path:
    runs = {r.run_id: r for r in index.runs(name)}
    rows = index.metrics(name)
    figures_ = figures(runs, rows)
    divs = [
        pio.to_html(f, include_plotlyjs=False, full_html=False, div_id=f"chart-{i}") for i, f in enumerate(figures_)
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
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragharness trends · {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2430}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d5dae1;padding:.25rem .5rem;font-size:.85rem}}
.regressed{{color:#b3261e;font-weight:600}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>Trends · {title}</h1>
<p>{len(runs)} runs; red crosses mark runs whose nightly gate found a significant regression.</p>
{"".join(divs)}
<h2>Runs</h2><table><tr><th>started</th><th>run (report)</th><th>status</th><th>gate</th></tr>{"".join(links)}</table>
</body></html>"""
    atomic_write_text(out, page)
    return out

"""The pages anyone with a key can read: runs, one run, its report, one item across runs, compare, trends; and the
admin's baseline pin."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ragharness.analysis.labels import now_utc
from ragharness.core.errors import RunError
from ragharness.reporting.report import INLINE_ITEMS, PAGES_DIR, render_report
from ragharness.runs.pins import BaselinePin, read_pins, set_pin
from ragharness.scoring import metrics as catalog
from ragharness.serve import views
from ragharness.serve.csp import hashed_csp
from ragharness.serve.reviews import labels_of
from ragharness.serve.state import state_of as _state

router = APIRouter(include_in_schema=False)
_PAGE = re.compile(r"^page-\d{4}\.html$")


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, f: Annotated[views.RunFilter, Query()]) -> HTMLResponse:
    state = _state(request)
    state.require(request, "viewer")
    listing = views.run_list(state, f)
    entries = state.catalog.entries()
    metrics = sorted(
        {m for e in entries for m in e.metrics}, key=lambda m: catalog.names().index(m) if m in catalog.names() else 99
    )
    return HTMLResponse(
        state.render(
            "runs.html.j2",
            request,
            listing=listing,
            metrics=metrics,
            specs={m: catalog.spec(m) for m in metrics},
            names=sorted({e.name for e in entries if e.name}),
            gates=sorted({e.gate or e.status for e in entries}),
            candidates=sorted({c.candidate for e in entries for c in e.candidates}),
            f=f.model_dump(),
        )
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    state = _state(request)
    state.require(request, "viewer")
    entry = state.catalog.entry(run_id)
    ctx: dict[str, object] = {"entry": entry, "summary": None, "agreement": None, "labels": 0, "items": []}
    if entry.readable:
        summary = views.summary(state, run_id)
        labels = labels_of(state.store, run_id)
        ctx.update(
            summary=summary,
            agreement=views.agreement(state, run_id, labels),
            labels=len(labels),
            reviewers=sorted({h.reviewer for h in labels}),
            items=state.catalog.gold(run_id),
            outcomes=state.catalog.outcomes(run_id),
        )
    pins = read_pins(state.store).pins
    pin = pins.get(entry.name)
    return HTMLResponse(state.render("run.html.j2", request, pinned=pin.run_id if pin else "", **ctx))


@router.get("/runs/{run_id}/report.html")
def report(request: Request, run_id: str) -> Response:
    """The run's report. With human labels it is rendered afresh so it shows scorer-vs-human agreement."""
    state = _state(request)
    state.require(request, "viewer")
    run = state.catalog.open(run_id)
    labels = labels_of(state.store, run_id)
    stored = run.file("report.html")
    if labels and len(state.catalog.gold(run_id)) <= INLINE_ITEMS:  # larger reports are paged files
        html = render_report(run, calibration=views.agreement(state, run_id, labels))
    elif stored.is_file():
        html = stored.read_text(encoding="utf-8")
    else:
        raise RunError(f"run {run_id} has no report.html; write it with `ragharness report {run_id}`")
    return HTMLResponse(html, headers={"Content-Security-Policy": hashed_csp(html)})


@router.get(f"/runs/{{run_id}}/{PAGES_DIR}/{{page}}")
def report_page(request: Request, run_id: str, page: str) -> Response:
    state = _state(request)
    state.require(request, "viewer")
    if not _PAGE.match(page):
        raise HTTPException(404, "no such report page")
    file = state.catalog.open(run_id).file(PAGES_DIR) / page
    if not file.is_file():
        raise HTTPException(404, "no such report page")
    html = file.read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": hashed_csp(html)})


@router.get("/runs/{run_id}/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, run_id: str, item_id: str) -> HTMLResponse:
    state = _state(request)
    state.require(request, "viewer")
    item = state.catalog.item(run_id, item_id)
    pack = state.catalog.pack(run_id, item_id)
    gens = state.catalog.answers(run_id).get(item_id, [])
    scores: dict[str, dict[str, object]] = {}
    for s in state.catalog.open(run_id).current_scores(where=lambda s: s.item_id == item_id).values():
        scores.setdefault(s.candidate, {})[s.metric] = s
    history = views.item_history(state, run_id, item_id)
    candidates = sorted({c for h in history for c in h.outcomes})
    return HTMLResponse(
        state.render(
            "item.html.j2",
            request,
            run_id=run_id,
            item=item,
            pack=pack,
            gens=gens,
            scores=scores,
            history=history,
            history_candidates=candidates,
        )
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, a: str = "", b: str = "", ca: str = "", cb: str = "", alpha: float = 0.05
) -> HTMLResponse:
    state = _state(request)
    state.require(request, "viewer")
    entries = [e for e in state.catalog.entries() if e.readable]
    view = None
    if a:
        b = b or a
        view = views.comparison(state, a, b, ca or None, cb or None, alpha)
    return HTMLResponse(
        state.render(
            "compare_page.html.j2",
            request,
            entries=entries,
            cands_of={e.run_id: [c.candidate for c in e.candidates] for e in entries},
            view=view,
            sel={"a": a, "b": b, "ca": ca, "cb": cb},
        )
    )


@router.get("/trends", response_class=HTMLResponse)
def trends_page(request: Request, name: str = "", candidate: str = "", prompt: str = "") -> HTMLResponse:
    state = _state(request)
    state.require(request, "viewer")
    figs = views.trend_figures(state, name, candidate, prompt)
    names, cands, prompts = views.trend_choices(state, name)
    runs, _ = views.trend_rows(state, name)
    return HTMLResponse(
        state.render(
            "trends_page.html.j2",
            request,
            figures=figs,
            names=names,
            candidates=cands,
            prompts=prompts,
            n_runs=len(runs),
            sel={"name": name, "candidate": candidate, "prompt": prompt},
        )
    )


@router.post("/runs/{run_id}/pin")
async def pin(request: Request, run_id: str) -> Response:
    state = _state(request)
    form = await request.form()
    state.check_csrf(request, str(form.get("csrf") or ""))
    principal = state.require(request, "admin")
    entry = state.catalog.entry(run_id)
    if not entry.readable:
        raise RunError(f"run {run_id} is incomplete ({entry.problem}); only a finished run can be a baseline")
    unpin = form.get("action") == "unpin"
    value = None if unpin else BaselinePin(run_id=run_id, by=principal.id, at=now_utc())
    await run_in_threadpool(set_pin, state.store, entry.name, value)
    return RedirectResponse(f"/runs/{run_id}", 303)

"""The JSON API for dashboards and scripts (documented by /openapi.json). Send the key as `Authorization: Bearer
<key>` or `X-API-Key: <key>`; a browser session works too, with its CSRF token in `X-CSRF-Token` for writes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ragharness.analysis.labels import Calibration, HumanLabel, now_utc, row_id
from ragharness.analysis.preferences import Choice, Preference, PreferenceVote
from ragharness.errors import RunError
from ragharness.runs.store import check_run_id
from ragharness.runs.summary import RunSummary
from ragharness.serve import views
from ragharness.serve.reviews import LabelForm, labels_of, make_labels, record_labels
from ragharness.serve.state import ServeState

router = APIRouter(prefix="/api", tags=["api"])


def _state(request: Request) -> ServeState:
    state: ServeState = request.app.state.serve
    return state


class Me(BaseModel):
    id: str
    name: str
    role: str
    read_only: bool


@router.get("/me", response_model=Me, summary="Who the key (or session) is")
def me(request: Request) -> Me:
    state = _state(request)
    p = state.require(request, "viewer")
    return Me(id=p.id, name=p.name, role=p.role, read_only=state.settings.read_only)


@router.get("/runs", response_model=views.RunList, summary="Runs in the store, filtered and sorted")
def runs(request: Request, f: Annotated[views.RunFilter, Query()]) -> views.RunList:
    state = _state(request)
    state.require(request, "viewer")
    return views.run_list(state, f)


@router.get("/runs/{run_id}/summary", response_model=RunSummary, summary="A finished run's summary.json")
def run_summary(request: Request, run_id: str) -> RunSummary:
    state = _state(request)
    state.require(request, "viewer")
    check_run_id(run_id, state.store.location)
    return views.summary(state, run_id)


@router.get(
    "/runs/{run_id}/agreement",
    response_model=Calibration | None,
    summary="Scorer-vs-human agreement from the run's labels (null without labels)",
)
def run_agreement(request: Request, run_id: str) -> Calibration | None:
    state = _state(request)
    state.require(request, "viewer")
    check_run_id(run_id, state.store.location)
    return views.agreement(state, run_id)


@router.get(
    "/compare",
    response_model=views.ComparisonView,
    summary="Paired comparison of two candidates (two runs, or two candidates of one run) with the human votes",
)
def compare(
    request: Request, a: str, b: str = "", ca: str = "", cb: str = "", alpha: float = 0.05
) -> views.ComparisonView:
    state = _state(request)
    state.require(request, "viewer")
    check_run_id(a, state.store.location)
    check_run_id(b or a, state.store.location)
    return views.comparison(state, a, b or a, ca or None, cb or None, alpha)


@router.get("/trends", response_model=views.TrendData, summary="The history index: runs and their metrics")
def trends(
    request: Request, name: str = "", candidate: str = "", prompt: str = "", metric: str = ""
) -> views.TrendData:
    state = _state(request)
    state.require(request, "viewer")
    run_rows, rows = views.trend_rows(state, name)
    rows = [
        r
        for r in rows
        if (not candidate or r.candidate == candidate)
        and (not prompt or r.prompt == prompt)
        and (not metric or r.metric == metric)
    ]
    return views.TrendData(runs=sorted(run_rows.values(), key=lambda r: r.started_at), metrics=rows)


@router.get("/labels", response_model=list[HumanLabel], summary="Every human label of a run (append-only records)")
def labels(request: Request, run: str) -> list[HumanLabel]:
    state = _state(request)
    state.require(request, "viewer")
    check_run_id(run, state.store.location)
    state.catalog.entry(run)
    return labels_of(state.store, run)


class LabelIn(BaseModel):
    run_id: str
    item_id: str
    candidate: str
    correctness: Literal["", "correct", "partially_correct", "incorrect", "off_topic"] = ""
    groundedness: Literal["", "grounded", "ungrounded"] = ""
    claims: list[bool | None] = Field(default_factory=list, description="Per judge claim, in the judge's order.")
    notes: str = Field("", max_length=4000)


@router.post("/labels", response_model=list[HumanLabel], status_code=201, summary="Record a label (reviewer)")
async def add_label(request: Request, body: LabelIn) -> list[HumanLabel]:
    state = _state(request)
    state.check_csrf(request, request.headers.get("x-csrf-token"))
    me = state.require(request, "reviewer")
    check_run_id(body.run_id, state.store.location)

    def save() -> list[HumanLabel]:
        run = state.catalog.open(body.run_id)
        form = LabelForm(
            row_id=row_id(run.manifest().run_id, body.item_id, body.candidate),
            correctness=body.correctness,
            groundedness=body.groundedness,
            claims=body.claims,
            notes=body.notes,
        )
        made = make_labels(run, body.item_id, [form], me.id, blind=False, redact=state.redact)
        record_labels(state.store, body.run_id, made)
        return made

    return await run_in_threadpool(save)


@router.get("/votes", response_model=Preference, summary="Human preference between two candidates")
def votes(request: Request, a: str, ca: str, cb: str, b: str = "") -> Preference:
    state = _state(request)
    state.require(request, "viewer")
    return views.comparison(state, a, b or a, ca, cb).human


class VoteIn(BaseModel):
    a: str
    ca: str
    b: str = ""
    cb: str
    item_id: str
    choice: Choice


@router.post("/votes", response_model=PreferenceVote, status_code=201, summary="Record a preference vote (reviewer)")
async def add_vote(request: Request, body: VoteIn) -> PreferenceVote:
    state = _state(request)
    state.check_csrf(request, request.headers.get("x-csrf-token"))
    me = state.require(request, "reviewer")

    def save() -> PreferenceVote:
        b = body.b or body.a
        check_run_id(body.a, state.store.location)
        check_run_id(b, state.store.location)
        for run_id, cand in ((body.a, body.ca), (b, body.cb)):
            names = state.catalog.open(run_id).manifest().candidates
            if cand not in names:
                raise RunError(f"candidate {cand!r}: not in run {run_id}; it has {names}")
        if (body.a, body.ca) == (b, body.cb):
            raise RunError("a vote needs two different answers: two candidates, or two runs")
        ha, hb = state.catalog.context_hashes(body.a), state.catalog.context_hashes(b)
        if not ha.get(body.item_id) or ha.get(body.item_id) != hb.get(body.item_id):
            raise RunError(f"{body.item_id}: the two sides did not answer from the same locked context")
        vote = PreferenceVote(
            run_a=body.a,
            candidate_a=body.ca,
            run_b=b,
            candidate_b=body.cb,
            item_id=body.item_id,
            choice=body.choice,
            left="a",
            context_hash=hb[body.item_id],
            reviewer=me.id,
            at=now_utc(),
        )
        state.store.append_record(b, "votes.jsonl", vote.model_dump_json())
        return vote

    return await run_in_threadpool(save)

"""The JSON API for dashboards and scripts (documented by /openapi.json). Send the key as `Authorization: Bearer
<key>` or `X-API-Key: <key>`; a browser session works too, with its CSRF token in `X-CSRF-Token` for writes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ragharness.analysis.labels import Calibration, HumanLabel, now_utc
from ragharness.analysis.preferences import Choice, Preference, PreferenceVote
from ragharness.runs.summary import RunSummary
from ragharness.serve import views
from ragharness.serve.reviews import LabelForm, check_votable, labels_of, make_labels, record_labels, vote_pair
from ragharness.serve.state import state_of as _state

router = APIRouter(prefix="/api", tags=["api"])


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
    return views.summary(state, run_id)


@router.get(
    "/runs/{run_id}/agreement",
    response_model=Calibration | None,
    summary="Scorer-vs-human agreement from the run's labels (null without labels)",
)
def run_agreement(request: Request, run_id: str) -> Calibration | None:
    state = _state(request)
    state.require(request, "viewer")
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
    state.catalog.entry(run)  # a run of this store (the id checked), listed or not
    # reviewers by the name given to their key, never by key material
    return [h.model_copy(update={"reviewer": state.keys.name_of(h.reviewer)}) for h in labels_of(state.store, run)]


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

    def save() -> list[HumanLabel]:
        form = LabelForm(
            row_id=state.catalog.row_id(body.run_id, body.item_id, body.candidate),
            correctness=body.correctness,
            groundedness=body.groundedness,
            claims=body.claims,
            notes=body.notes,
        )
        made = make_labels(state.catalog, body.run_id, body.item_id, [form], me.id, blind=False, redact=state.redact)
        record_labels(state.store, body.run_id, made)
        return made

    return await run_in_threadpool(save)


@router.get("/votes", response_model=Preference, summary="Human preference between two candidates")
def votes(request: Request, a: str, ca: str, cb: str, b: str = "") -> Preference:
    state = _state(request)
    state.require(request, "viewer")
    return views.human_preference(state, vote_pair(state.catalog, a, ca, b, cb))


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
        pair = vote_pair(state.catalog, body.a, body.ca, body.b, body.cb)
        context_hash = check_votable(state.catalog, pair, body.item_id)
        vote = PreferenceVote(
            run_a=pair[0],
            candidate_a=pair[1],
            run_b=pair[2],
            candidate_b=pair[3],
            item_id=body.item_id,
            choice=body.choice,
            left="a",  # no sides on the API: the caller names A or B
            context_hash=context_hash,
            reviewer=me.id,
            at=now_utc(),
        )
        state.store.append_record(pair[2], "votes.jsonl", vote.model_dump_json())
        return vote

    return await run_in_threadpool(save)

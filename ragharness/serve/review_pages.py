"""Human review pages: label answers (blind by default) and vote between two candidates on one locked context."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ragharness.analysis.compare import pick_candidates
from ragharness.errors import RunError
from ragharness.runs.store import check_run_id
from ragharness.serve.reviews import (
    LabelForm,
    labels_of,
    make_labels,
    make_vote,
    next_unlabelled,
    record_labels,
    review_item,
    shuffled,
    votes_of,
)
from ragharness.serve.state import ServeState

router = APIRouter(include_in_schema=False)


def _state(request: Request) -> ServeState:
    state: ServeState = request.app.state.serve
    return state


def _flag(value: str | None) -> bool:
    return value not in ("0", "false", "no", "off")


@router.get("/runs/{run_id}/review")
def review_next(request: Request, run_id: str, blind: str = "1", after: str = "") -> Response:
    state = _state(request)
    me = state.require(request, "reviewer")
    check_run_id(run_id, state.store.location)
    run = state.catalog.open(run_id)
    nxt = next_unlabelled(run, labels_of(state.store, run_id), me.id, after)
    if nxt is None:
        html = state.render("review_done.html.j2", request, run_id=run_id, what="label")
        return HTMLResponse(html)
    return RedirectResponse(f"/runs/{run_id}/review/{nxt}?{urlencode({'blind': '1' if _flag(blind) else '0'})}", 303)


@router.get("/runs/{run_id}/review/{item_id}", response_class=HTMLResponse)
def review_page(request: Request, run_id: str, item_id: str, blind: str = "1") -> HTMLResponse:
    state = _state(request)
    me = state.require(request, "reviewer")
    check_run_id(run_id, state.store.location)
    run = state.catalog.open(run_id)
    warm = getattr(state.redact, "warm", None)
    if warm is not None:
        warm()  # the reviewer may write a comment: load the PII redactor now
    view = review_item(run, item_id, me.id, blind=_flag(blind))
    mine = {h.candidate: h for h in labels_of(state.store, run_id) if h.reviewer == me.id and h.item_id == item_id}
    done = sum(1 for a in view.answers if a.candidate in mine)
    return HTMLResponse(
        state.render("review.html.j2", request, run_id=run_id, view=view, blind=_flag(blind), mine=mine, done=done)
    )


@router.post("/runs/{run_id}/review/{item_id}")
async def review_submit(request: Request, run_id: str, item_id: str) -> Response:
    state = _state(request)
    form = await request.form()
    state.check_csrf(request, str(form.get("csrf") or ""))
    me = state.require(request, "reviewer")
    check_run_id(run_id, state.store.location)
    blind = _flag(str(form.get("blind") or "1"))
    forms = []
    for k in range(int(str(form.get("n") or "0"))):
        claims: list[bool | None] = []
        j = 0
        while f"claim_{k}_{j}" in form:
            v = str(form.get(f"claim_{k}_{j}") or "")
            claims.append(True if v == "grounded" else (False if v == "ungrounded" else None))
            j += 1
        forms.append(
            LabelForm(
                row_id=str(form.get(f"row_{k}") or ""),
                correctness=str(form.get(f"correctness_{k}") or ""),
                groundedness=str(form.get(f"groundedness_{k}") or ""),
                claims=claims,
                notes=str(form.get(f"notes_{k}") or ""),
            )
        )

    def save() -> None:
        run = state.catalog.open(run_id)
        labels = make_labels(run, item_id, forms, me.id, blind=blind, redact=state.redact)
        record_labels(state.store, run_id, labels)

    await run_in_threadpool(save)
    query = urlencode({"blind": "1" if blind else "0", "after": item_id})
    return RedirectResponse(f"/runs/{run_id}/review?{query}", 303)


# -- preference votes -----------------------------------------------------------------------------------------
def _pair(state: ServeState, a: str, ca: str, b: str, cb: str) -> tuple[str, str, str, str]:
    check_run_id(a, state.store.location)
    check_run_id(b or a, state.store.location)
    run_a, run_b = state.catalog.open(a), state.catalog.open(b or a)
    ca, cb = pick_candidates(run_a, run_b, ca or None, cb or None)
    if (a, ca) == (b or a, cb):
        raise RunError("a vote needs two different answers: pick two candidates, or two runs")
    return (a, ca, b or a, cb)


def _votable(state: ServeState, pair: tuple[str, str, str, str]) -> list[str]:
    """Items both sides answered from the identical locked context (same hash), in gold set order."""
    ha, hb = state.catalog.context_hashes(pair[0]), state.catalog.context_hashes(pair[2])
    items = [i.id for i in state.catalog.open(pair[2]).goldset().items]
    return [i for i in items if i in ha and ha[i] and ha[i] == hb.get(i)]


def _left(pair: tuple[str, str, str, str], item_id: str, reviewer: str) -> Literal["a", "b"]:
    side: Literal["a", "b"] = shuffled(["a", "b"], "vote", *pair, item_id, reviewer)[0]
    return side


def _query(pair: tuple[str, str, str, str], **extra: str) -> str:
    return urlencode({"a": pair[0], "ca": pair[1], "b": pair[2], "cb": pair[3], **extra})


@router.get("/vote")
def vote_next(request: Request, a: str, b: str = "", ca: str = "", cb: str = "", after: str = "") -> Response:
    state = _state(request)
    me = state.require(request, "reviewer")
    pair = _pair(state, a, ca, b, cb)
    done = {v.item_id for v in votes_of(state.store, pair[2]) if v.pair == pair and v.reviewer == me.id}
    items = _votable(state, pair)
    start = items.index(after) + 1 if after in items else 0
    nxt = next((i for i in items[start:] + items[:start] if i not in done), None)
    if nxt is None:
        return HTMLResponse(state.render("review_done.html.j2", request, run_id=pair[2], what="vote", pair=pair))
    return RedirectResponse(f"/vote/item?{_query(pair, item=nxt)}", 303)


@router.get("/vote/item", response_class=HTMLResponse)
def vote_page(request: Request, a: str, item: str, b: str = "", ca: str = "", cb: str = "") -> HTMLResponse:
    state = _state(request)
    me = state.require(request, "reviewer")
    pair = _pair(state, a, ca, b, cb)
    if item not in _votable(state, pair):
        raise RunError(f"{item}: not answered by both from the same locked context; pick another item")
    run_a, run_b = state.catalog.open(pair[0]), state.catalog.open(pair[2])
    gen = {
        "a": next(g for g in run_a.generations() if g.item_id == item and g.candidate == pair[1]),
        "b": next(g for g in run_b.generations() if g.item_id == item and g.candidate == pair[3]),
    }
    left = _left(pair, item, me.id)
    right = "b" if left == "a" else "a"
    gold = next(i for i in run_b.goldset().items if i.id == item)
    return HTMLResponse(
        state.render(
            "vote.html.j2",
            request,
            pair=pair,
            item=gold,
            pack=state.catalog.pack(pair[2], item),
            left=gen[left],
            right=gen[right],
            query=_query(pair),
            n_votable=len(_votable(state, pair)),
        )
    )


@router.post("/vote/item")
async def vote_submit(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    state.check_csrf(request, str(form.get("csrf") or ""))
    me = state.require(request, "reviewer")
    a, b = str(form.get("a") or ""), str(form.get("b") or "")
    ca, cb, item = str(form.get("ca") or ""), str(form.get("cb") or ""), str(form.get("item") or "")

    def save() -> tuple[str, str, str, str]:
        pair = _pair(state, a, ca, b, cb)
        if item not in _votable(state, pair):
            raise RunError(f"{item}: not answered by both from the same locked context")
        vote = make_vote(
            pair,
            item,
            str(form.get("choice") or ""),
            _left(pair, item, me.id),  # recomputed here: the form cannot move the answers
            state.catalog.context_hashes(pair[2]).get(item, ""),
            me.id,
        )
        state.store.append_record(pair[2], "votes.jsonl", vote.model_dump_json())
        return pair

    pair = await run_in_threadpool(save)
    return RedirectResponse(f"/vote?{_query(pair, after=item)}", 303)

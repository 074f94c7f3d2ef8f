"""Human review pages: label answers (blind by default) and vote between two candidates on one locked context."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ragharness.serve.catalog import RunCatalog
from ragharness.serve.reviews import (
    LabelForm,
    Pair,
    check_votable,
    labels_of,
    make_labels,
    make_vote,
    next_unlabelled,
    record_labels,
    review_item,
    shuffled,
    votable,
    vote_pair,
    votes_of,
)
from ragharness.serve.state import state_of as _state

router = APIRouter(include_in_schema=False)


def _flag(value: str | None) -> bool:
    return value not in ("0", "false", "no", "off")


@router.get("/runs/{run_id}/review")
def review_next(request: Request, run_id: str, blind: str = "1", after: str = "") -> Response:
    state = _state(request)
    me = state.require(request, "reviewer")
    nxt = next_unlabelled(state.catalog, run_id, labels_of(state.store, run_id), me.id, after)
    if nxt is None:
        html = state.render("review_done.html.j2", request, run_id=run_id, what="label")
        return HTMLResponse(html)
    return RedirectResponse(f"/runs/{run_id}/review/{nxt}?{urlencode({'blind': '1' if _flag(blind) else '0'})}", 303)


@router.get("/runs/{run_id}/review/{item_id}", response_class=HTMLResponse)
def review_page(request: Request, run_id: str, item_id: str, blind: str = "1") -> HTMLResponse:
    state = _state(request)
    me = state.require(request, "reviewer")
    warm = getattr(state.redact, "warm", None)
    if warm is not None:
        warm()  # the reviewer may write a comment: load the PII redactor now
    view = review_item(state.catalog, run_id, item_id, me.id, blind=_flag(blind))
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
        labels = make_labels(state.catalog, run_id, item_id, forms, me.id, blind=blind, redact=state.redact)
        record_labels(state.store, run_id, labels)

    await run_in_threadpool(save)
    query = urlencode({"blind": "1" if blind else "0", "after": item_id})
    return RedirectResponse(f"/runs/{run_id}/review?{query}", 303)


# -- preference votes -----------------------------------------------------------------------------------------
def _left(catalog: RunCatalog, pair: Pair, item_id: str, reviewer: str) -> Literal["a", "b"]:
    keyed = catalog.row_id(pair[2], item_id, "\x00".join(("vote", *pair, reviewer)))  # not computable by reviewers
    side: Literal["a", "b"] = shuffled(["a", "b"], keyed)[0]
    return side


def _query(pair: Pair, **extra: str) -> str:
    return urlencode({"a": pair[0], "ca": pair[1], "b": pair[2], "cb": pair[3], **extra})


@router.get("/vote")
def vote_next(request: Request, a: str, b: str = "", ca: str = "", cb: str = "", after: str = "") -> Response:
    state = _state(request)
    me = state.require(request, "reviewer")
    pair = vote_pair(state.catalog, a, ca, b, cb)
    done = {v.item_id for v in votes_of(state.store, pair[2]) if v.pair == pair and v.reviewer == me.id}
    items = votable(state.catalog, pair)
    start = items.index(after) + 1 if after in items else 0
    nxt = next((i for i in items[start:] + items[:start] if i not in done), None)
    if nxt is None:
        return HTMLResponse(state.render("review_done.html.j2", request, run_id=pair[2], what="vote", pair=pair))
    return RedirectResponse(f"/vote/item?{_query(pair, item=nxt)}", 303)


@router.get("/vote/item", response_class=HTMLResponse)
def vote_page(request: Request, a: str, item: str, b: str = "", ca: str = "", cb: str = "") -> HTMLResponse:
    state = _state(request)
    me = state.require(request, "reviewer")
    pair = vote_pair(state.catalog, a, ca, b, cb)
    check_votable(state.catalog, pair, item)
    answers = {
        side: next((g for g in state.catalog.answers(run_id).get(item, []) if g.candidate == cand), None)
        for side, run_id, cand in (("a", pair[0], pair[1]), ("b", pair[2], pair[3]))
    }
    left = _left(state.catalog, pair, item, me.id)
    return HTMLResponse(
        state.render(
            "vote.html.j2",
            request,
            pair=pair,
            item=state.catalog.item(pair[2], item),
            pack=state.catalog.pack(pair[2], item),
            left=answers[left],
            right=answers["b" if left == "a" else "a"],
            query=_query(pair),
            n_votable=len(votable(state.catalog, pair)),
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

    def save() -> Pair:
        pair = vote_pair(state.catalog, a, ca, b, cb)
        vote = make_vote(
            pair,
            item,
            str(form.get("choice") or ""),
            _left(state.catalog, pair, item, me.id),  # recomputed here: the form cannot move the answers
            check_votable(state.catalog, pair, item),
            me.id,
        )
        state.store.append_record(pair[2], "votes.jsonl", vote.model_dump_json())
        return pair

    pair = await run_in_threadpool(save)
    return RedirectResponse(f"/vote?{_query(pair, after=item)}", 303)

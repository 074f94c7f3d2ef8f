"""Human review in the app: what a reviewer sees for one item (blind: opaque answer ids, shuffled per reviewer),
the judge's claims to label one by one, recording labels and votes as append-only records in the run store, and
redacting free comments before they are stored."""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Any, Literal

from pydantic import BaseModel

from ragharness.analysis.compare import pick_candidates
from ragharness.analysis.labels import (
    CORRECTNESS_LABELS,
    GROUNDEDNESS_LABELS,
    ClaimLabel,
    HumanLabel,
    latest_labels,
    now_utc,
    read_labels,
)
from ragharness.analysis.preferences import Choice, PreferenceVote, read_votes
from ragharness.core.errors import RunError
from ragharness.core.types import ContextPack, Generation, GoldItem
from ragharness.runs.rundir import RunDir
from ragharness.runs.store import RunStore
from ragharness.scoring.judge import parse_judge_output, request_key
from ragharness.serve.catalog import RunCatalog


class Answer(BaseModel):
    row_id: str
    candidate: str
    text: str
    ok: bool
    claims: list[str] = []


class ReviewItem(BaseModel):
    item: GoldItem
    pack: ContextPack
    answers: list[Answer]
    position: int
    total: int


def shuffled(values: list[Any], *seed_parts: str) -> list[Any]:
    """A fixed random order per seed (the same reviewer sees the same order on reload; another one another)."""
    seed = int(hashlib.sha256("\x00".join(seed_parts).encode()).hexdigest()[:16], 16)
    out = list(values)
    random.Random(seed).shuffle(out)
    return out


def claims_by_answer(run: RunDir, item_id: str, gens: list[Generation], n_passages: int) -> dict[str, list[str]]:
    """The claims the LLM judge extracted from each answer (none when the run had no judge)."""
    if not run.file("judge_calls.jsonl").is_file():
        return {}
    wanted = {request_key(item_id, g.candidate): g for g in gens}
    out: dict[str, list[str]] = {}
    for call in run.read_jsonl("judge_calls.jsonl", Generation):
        g = wanted.get(call.item_id)
        if g is None or not call.ok:
            continue
        try:
            parsed = parse_judge_output(call.text, n_passages, g.text)
        except ValueError:
            continue
        out[g.candidate] = [c.text for c in parsed.claims]
    return out


def review_item(catalog: RunCatalog, run_id: str, item_id: str, reviewer: str, *, blind: bool) -> ReviewItem:
    items = catalog.gold(run_id)
    item = catalog.item(run_id, item_id)
    pack = catalog.pack(run_id, item_id)
    if pack is None:
        raise RunError(f"{item_id}: run {run_id} has no locked context for this item; it never got past retrieval")
    gens = catalog.answers(run_id).get(item_id, [])
    claims = claims_by_answer(catalog.open(run_id), item_id, gens, len(pack.passages))
    answers = [
        Answer(
            row_id=catalog.row_id(run_id, item_id, g.candidate),
            candidate=g.candidate,
            text=g.text if g.ok else f"(no answer: {g.error.type if g.error else 'error'})",
            ok=g.ok,
            claims=claims.get(g.candidate, []),
        )
        for g in gens
    ]
    if blind:
        # seeded by a keyed id: a reviewer cannot work out the order from names they know
        answers = shuffled(answers, "label", catalog.row_id(run_id, item_id, f"\x00order\x00{reviewer}"))
    return ReviewItem(item=item, pack=pack, answers=answers, position=items.index(item) + 1, total=len(items))


def labels_of(store: RunStore, run_id: str) -> list[HumanLabel]:
    return read_labels(store.read_records(run_id, "labels.jsonl"), f"{store.location}/{run_id}/labels")


def votes_of(store: RunStore, run_id: str) -> list[PreferenceVote]:
    return read_votes(store.read_records(run_id, "votes.jsonl"), f"{store.location}/{run_id}/votes")


def next_unlabelled(
    catalog: RunCatalog, run_id: str, labels: list[HumanLabel], reviewer: str, after: str = ""
) -> str | None:
    """The next item (gold set order, after `after`) with an answer this reviewer has not labelled yet."""
    done = {(h.item_id, h.candidate) for h in latest_labels(labels) if h.reviewer == reviewer}
    answers = catalog.answers(run_id)
    ids = [i.id for i in catalog.gold(run_id)]
    start = ids.index(after) + 1 if after in ids else 0
    for item_id in ids[start:] + ids[:start]:
        if any((item_id, g.candidate) not in done for g in answers.get(item_id, ())):
            return item_id
    return None


Pair = tuple[str, str, str, str]
"""(run A, candidate A, run B, candidate B)"""


def vote_pair(catalog: RunCatalog, a: str, ca: str, b: str, cb: str) -> Pair:
    """Two different answers to vote between: two candidates of one run, or of two runs."""
    run_a, run_b = catalog.open(a), catalog.open(b or a)
    ca, cb = pick_candidates(run_a, run_b, ca or None, cb or None)
    for run, cand in ((run_a, ca), (run_b, cb)):
        names = run.manifest().candidates
        if cand not in names:
            raise RunError(f"candidate {cand!r}: not in run {run.path.name}; it has {names}")
    if (a, ca) == (b or a, cb):
        raise RunError("a vote needs two different answers: pick two candidates, or two runs")
    return (a, ca, b or a, cb)


def votable(catalog: RunCatalog, pair: Pair) -> list[str]:
    """Items both sides answered from the identical locked context (same hash), in gold set order."""
    ha, hb = catalog.context_hashes(pair[0]), catalog.context_hashes(pair[2])
    return [i.id for i in catalog.gold(pair[2]) if ha.get(i.id) and ha.get(i.id) == hb.get(i.id)]


def check_votable(catalog: RunCatalog, pair: Pair, item_id: str) -> str:
    """The item's locked-context hash, or RunError when the two sides did not answer from the same context."""
    if item_id not in votable(catalog, pair):
        raise RunError(
            f"{item_id}: the two answers were not given the same locked context (or the item is not in both runs); "
            "vote on another item"
        )
    return catalog.context_hashes(pair[2])[item_id]


class LabelForm(BaseModel):
    row_id: str
    correctness: str = ""
    groundedness: str = ""
    claims: list[bool | None] = []
    notes: str = ""


def make_labels(
    catalog: RunCatalog,
    run_id: str,
    item_id: str,
    forms: list[LabelForm],
    reviewer: str,
    *,
    blind: bool,
    redact: Any,
) -> list[HumanLabel]:
    """Validate the reviewer's answers to the form; every problem names the answer and the field."""
    gens = catalog.answers(run_id).get(item_id, [])
    by_row = {catalog.row_id(run_id, item_id, g.candidate): g for g in gens}
    pack = catalog.pack(run_id, item_id)
    claims = claims_by_answer(catalog.open(run_id), item_id, gens, len(pack.passages) if pack else 0)
    labels, problems = [], []
    for n, f in enumerate(forms, start=1):
        if not (
            f.correctness.strip() or f.groundedness.strip() or f.notes.strip() or any(v is not None for v in f.claims)
        ):
            continue  # an answer the reviewer left alone
        g = by_row.get(f.row_id)
        if g is None:
            problems.append(f"answer {n}: {f.row_id!r} is not an answer to item {item_id} of this run")
            continue
        c = f.correctness.strip().lower().replace(" ", "_") or None
        gr = f.groundedness.strip().lower() or None
        if c is not None and c not in CORRECTNESS_LABELS:
            problems.append(f"answer {n}: correctness {c!r}; use one of {', '.join(CORRECTNESS_LABELS)}")
            continue
        if gr is not None and gr not in GROUNDEDNESS_LABELS:
            problems.append(f"answer {n}: groundedness {gr!r}; use one of {', '.join(GROUNDEDNESS_LABELS)}")
            continue
        texts = claims.get(g.candidate, [])
        claim_labels = [ClaimLabel(text=t, grounded=v) for t, v in zip(texts, f.claims, strict=False) if v is not None]
        labels.append(
            HumanLabel(
                item_id=item_id,
                candidate=g.candidate,
                correctness=c,  # checked against CORRECTNESS_LABELS above
                groundedness=gr,
                claims=claim_labels,
                notes=redact(f.notes.strip()[:4000]) if f.notes.strip() else "",
                reviewer=reviewer,
                at=now_utc(),
                blind=blind,
            )
        )
    if problems:
        raise RunError("; ".join(problems))
    if not labels:
        raise RunError(f"item {item_id}: nothing to record; pick a correctness or groundedness label for an answer")
    return labels


def record_labels(store: RunStore, run_id: str, labels: list[HumanLabel]) -> None:
    for label in labels:
        store.append_record(run_id, "labels.jsonl", label.model_dump_json())


def make_vote(
    pair: Pair,
    item_id: str,
    picked: str,
    left: Literal["a", "b"],
    context_hash: str,
    reviewer: str,
) -> PreferenceVote:
    """`picked` is what the reviewer clicked: left, right, tie or both_bad (positions, not candidates)."""
    if picked not in ("left", "right", "tie", "both_bad"):
        raise RunError(f"vote {picked!r}: use left, right, tie or both_bad")
    choice: Choice
    if picked == "left":
        choice = left
    elif picked == "right":
        choice = "b" if left == "a" else "a"
    else:
        choice = picked  # type: ignore[assignment]  # tie | both_bad
    return PreferenceVote(
        run_a=pair[0],
        candidate_a=pair[1],
        run_b=pair[2],
        candidate_b=pair[3],
        item_id=item_id,
        choice=choice,
        left=left,
        context_hash=context_hash,
        reviewer=reviewer,
        at=now_utc(),
    )


class NoteRedactor:
    """Free comments pass through the PII redactor before they are stored. Presidio takes seconds to load, so it
    loads in the background once someone opens a labelling page (not at start-up, which stays fast); a comment sent
    before then waits for it."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self._redactor: Any = None
        self._error: BaseException | None = None

    def warm(self) -> None:
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="note-redactor", daemon=True)
                self._thread.start()

    def _load(self) -> None:
        try:
            from ragharness.guardrails.pii import PiiRedactor

            r = PiiRedactor()
            r.redact("warm up 415-555-0100")
            self._redactor = r
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def __call__(self, text: str) -> str:
        self.warm()
        self._ready.wait(120)
        if self._redactor is None:
            raise RunError(f"comments cannot be stored: the PII redactor failed to load ({type(self._error).__name__})")
        return str(self._redactor.redact(text))

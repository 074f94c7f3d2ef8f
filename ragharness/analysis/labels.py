"""Human labels: export a run for annotation, import the labels back, and calibrate scorers against them.

The exported CSV is blind by default: rows carry an opaque row id (the mapping to candidates stays in the run
directory), are ordered by that id, and do not name the candidate. Labels from the CSV and from the review app
(`ragharness serve`) are the same append-only records in the run's labels.jsonl; the latest label of each reviewer
for an answer counts.
"""

from __future__ import annotations

import csv
import hmac
import json
import secrets
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field

from ragharness.core.errors import RunError
from ragharness.core.fileio import atomic_write_text
from ragharness.core.types import Score
from ragharness.runs.latest import latest_by
from ragharness.runs.rundir import RunDir
from ragharness.scoring.thresholds import load_thresholds

R = TypeVar("R", bound=BaseModel)
GROUNDEDNESS_LABELS = ("grounded", "ungrounded")
CORRECTNESS_LABELS = ("correct", "partially_correct", "incorrect", "off_topic")
COLUMNS = (
    "row_id",
    "item_id",
    "intent",
    "must_refuse",
    "question",
    "reference_answer",
    "passages",
    "answer",
    "human_groundedness",
    "human_correctness",
    "notes",
)


class ClaimLabel(BaseModel):
    text: str = Field(description="The claim as the judge extracted it.")
    grounded: bool


class HumanLabel(BaseModel):
    item_id: str
    candidate: str
    groundedness: Literal["grounded", "ungrounded"] | None = None
    correctness: Literal["correct", "partially_correct", "incorrect", "off_topic"] | None = None
    notes: str = Field("", max_length=4000, description="Free comment, PII-redacted before it is stored.")
    claims: list[ClaimLabel] = Field(default_factory=list, description="Per judge claim: grounded or not.")
    reviewer: str = Field("", description="Reviewer id (the API key's id in the review app; 'csv' for imports).")
    at: str = Field("", description="When the label was given (UTC, ISO 8601).")
    blind: bool = Field(True, description="The reviewer did not see which candidate wrote the answer.")


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def latest_labels(labels: Iterable[HumanLabel]) -> list[HumanLabel]:
    """The latest label of each reviewer for each answer (records are append-only; a correction is a new one)."""
    latest: dict[tuple[str, str, str], HumanLabel] = {}
    for h in labels:
        latest[(h.item_id, h.candidate, h.reviewer)] = h
    return list(latest.values())


def parse_records(lines: Iterable[str], model: type[R], where: str) -> list[R]:
    """Append-only review records (labels, votes), each problem naming the record and what to do."""
    out = []
    for n, line in enumerate(lines, start=1):
        try:
            out.append(model.model_validate_json(line))
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise RunError(f"{where}: record {n}: unreadable {model.__name__} ({first}); remove that record") from exc
    return out


def read_labels(lines: Iterable[str], where: str) -> list[HumanLabel]:
    return parse_records(lines, HumanLabel, where)


def row_id(secret: bytes, run_id: str, item_id: str, candidate: str) -> str:
    """An opaque id for one answer: what a blind reviewer sees instead of the candidate's name. A MAC keyed by a
    secret the reviewer never sees (the review app's store key; a fresh one per CSV export), so nobody can compute
    which candidate an id stands for."""
    if len(secret) < 16:
        raise ValueError("row ids need a secret of at least 16 bytes")
    return hmac.new(secret, f"{run_id}\x00{item_id}\x00{candidate}".encode(), "sha256").hexdigest()[:16]


def export_csv(run_dir: Path, out: Path, *, show_candidate: bool = False) -> int:
    run = RunDir.open(run_dir)
    manifest = run.manifest()
    items = {i.id: i for i in run.goldset().items}
    packs = {p.item_id: p for p in run.packs()}
    keys: dict[str, list[str]] = {}
    rows = []
    secret = secrets.token_bytes(32)  # this export's ids mean nothing without annotation_keys.json
    for g in run.generations():
        item, pack = items[g.item_id], packs[g.item_id]
        rid = row_id(secret, manifest.run_id, g.item_id, g.candidate)
        keys[rid] = [g.item_id, g.candidate]
        passages = "\n\n".join(f"[{p.number}] {p.title}: {p.text}" for p in pack.passages)
        answer = g.text if g.ok else f"(no answer: {g.error.type if g.error else 'error'})"
        row = {
            "row_id": rid,
            "item_id": g.item_id,
            "intent": item.intent,
            "must_refuse": str(not item.answerable),
            "question": pack.question,
            "reference_answer": item.reference_answer,
            "passages": passages,
            "answer": answer,
            "human_groundedness": "",
            "human_correctness": "",
            "notes": "",
        }
        if show_candidate:
            row["candidate"] = g.candidate
        rows.append(row)
    rows.sort(key=lambda r: r["row_id"])
    columns = [*COLUMNS, *(["candidate"] if show_candidate else [])]
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(run.file("annotation_keys.json"), json.dumps(keys, indent=1))
    return len(rows)


def import_csv(run_dir: Path, file: Path, *, reviewer: str = "csv") -> list[HumanLabel]:
    """Read labels back and append them to the run's labels.jsonl; every problem names the row and column and
    what is allowed (nothing is appended then)."""
    run = RunDir.open(run_dir)
    keys_file = run.file("annotation_keys.json")
    if not keys_file.is_file():
        raise RunError(f"{run_dir}: no annotation_keys.json; export with `ragharness annotate export` first")
    keys = json.loads(keys_file.read_text(encoding="utf-8"))
    labels: list[HumanLabel] = []
    problems: list[str] = []
    with file.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"row_id", "human_groundedness", "human_correctness"} - set(reader.fieldnames or [])
        if missing:
            raise RunError(f"{file}: missing column(s) {sorted(missing)}; use the CSV written by annotate export")
        for n, row in enumerate(reader, start=2):
            rid = (row.get("row_id") or "").strip()
            if rid not in keys:
                problems.append(f"{file}: row {n}: row_id {rid!r} is not from this run's export")
                continue
            g = (row.get("human_groundedness") or "").strip().lower() or None
            c = (row.get("human_correctness") or "").strip().lower().replace(" ", "_") or None
            if g is not None and g not in GROUNDEDNESS_LABELS:
                problems.append(
                    f"{file}: row {n}: human_groundedness {g!r}; use one of {GROUNDEDNESS_LABELS} or leave empty"
                )
                continue
            if c is not None and c not in CORRECTNESS_LABELS:
                problems.append(
                    f"{file}: row {n}: human_correctness {c!r}; use one of {CORRECTNESS_LABELS} or leave empty"
                )
                continue
            if g is None and c is None:
                continue
            item_id, candidate = keys[rid]
            labels.append(
                HumanLabel(
                    item_id=item_id,
                    candidate=candidate,
                    groundedness=g,
                    correctness=c,
                    notes=(row.get("notes") or "").strip()[:4000],
                    reviewer=reviewer,
                    at=now_utc(),
                )
            )
    if problems:
        raise RunError("\n".join(problems))
    for label in labels:
        run.append_line("labels.jsonl", label.model_dump_json())
    return labels


class Agreement(BaseModel):
    scorer: str
    metric: str
    human_field: str
    n: int
    accuracy: float
    balanced_accuracy: float
    cohen_kappa: float
    f1_negative: float = Field(description="F1 of the negative class (ungrounded / not correct).")
    labels: list[str]
    confusion: list[list[int]] = Field(description="Rows: human label; columns: scorer label (same order).")


class Calibration(BaseModel):
    n_labels: int
    agreements: list[Agreement]


def _scorer_label(score: Score, human_field: str, faithful_min: float) -> str | None:
    if human_field == "groundedness":
        value = 1.0 if score.value is None else score.value  # nothing claimed: nothing ungrounded
        return "grounded" if value >= faithful_min else "ungrounded"
    return score.label if score.label in CORRECTNESS_LABELS else ("incorrect" if score.label else None)


def calibrate(run_dir: Path, labels_file: Path | None = None) -> Calibration:
    run = RunDir.open(run_dir)
    if labels_file is not None and labels_file.suffix == ".csv":
        import_csv(run_dir, labels_file)
        labels_file = None
    src = labels_file or run.file("labels.jsonl")
    if not src.is_file():
        raise RunError(
            f"{src}: no labels; import them with `ragharness annotate import` or label in `ragharness serve`"
        )
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
    result = agreement_with(run, read_labels(lines, str(src)))
    run.write_json("calibration.json", result)
    return result


def agreement_with(run: RunDir, labels: Iterable[HumanLabel]) -> Calibration:
    """Scorer-vs-human agreement over the latest label of each reviewer for each answer (each reviewer's label is
    one pair; two reviewers of one answer are two pairs)."""
    current = latest_labels(labels)
    faithful_min = load_thresholds(run.scoring_overrides()).groundedness_faithful_min  # as the run was scored
    human: dict[tuple[str, str], list[HumanLabel]] = {}
    for h in current:
        human.setdefault((h.item_id, h.candidate), []).append(h)
    by_scorer: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    # the latest record of each scorer version per answer and metric (re-scoring appends)
    latest = latest_by(
        run.read_jsonl("scores.jsonl", Score),
        lambda s: (s.scorer, s.scorer_version, s.metric, s.item_id, s.candidate),
        lambda s: s,
    )
    for s in latest.values():
        for h in human.get((s.item_id, s.candidate), []):
            for field, metric_suffix in (("groundedness", "groundedness"), ("correctness", "correctness")):
                if not s.metric.endswith(metric_suffix) or getattr(h, field) is None:
                    continue
                pred = _scorer_label(s, field, faithful_min)
                if pred is not None:
                    key = (f"{s.scorer}@{s.scorer_version}", s.metric, field)
                    by_scorer.setdefault(key, []).append((str(getattr(h, field)), pred))
    agreements = []
    for (scorer, metric, field), pairs in sorted(by_scorer.items()):
        with warnings.catch_warnings():  # one class only (all labelled grounded): sklearn warns, figures still hold
            warnings.simplefilter("ignore", UserWarning)
            agreements.append(_agreement(scorer, metric, field, pairs))
    return Calibration(n_labels=len(current), agreements=agreements)


def _agreement(scorer: str, metric: str, field: str, pairs: list[tuple[str, str]]) -> Agreement:
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    order = list(GROUNDEDNESS_LABELS if field == "groundedness" else CORRECTNESS_LABELS)
    negative = "ungrounded" if field == "groundedness" else "not_correct"
    bt = [t if field == "groundedness" else ("correct" if t == "correct" else negative) for t in y_true]
    bp = [p if field == "groundedness" else ("correct" if p == "correct" else negative) for p in y_pred]
    return Agreement(
        scorer=scorer,
        metric=metric,
        human_field=field,
        n=len(pairs),
        accuracy=sum(t == p for t, p in pairs) / len(pairs),
        balanced_accuracy=float(balanced_accuracy_score(y_true, y_pred)),
        cohen_kappa=float(cohen_kappa_score(y_true, y_pred)) if len(set(y_true) | set(y_pred)) > 1 else 1.0,
        f1_negative=float(f1_score(bt, bp, pos_label=negative, zero_division=0)),
        labels=order,
        confusion=confusion_matrix(y_true, y_pred, labels=order).tolist(),
    )

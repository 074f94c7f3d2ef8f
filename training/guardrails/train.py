"""Train the local guardrail detectors' heads: `make train-guardrails` (or `python training/guardrails/train.py`).

Three logistic-regression heads on the shipped MiniLM sentence embeddings (see ragharness/guardrails/heads.py):

- prompt_attack_input: direct jailbreaks (in-the-wild prompts) vs benign requests (WildGuard benign prompts,
  NotInject trigger-word prompts, help-center questions, and every unsafe-request row: harmful is not the same as
  an attack); 100-word windows.
- prompt_attack_context: the injected instruction inside a BIPIA document vs the document's own text; 32-word
  windows, features = window embedding and its offset from the document's mean window. The injected span is the
  difference between a poisoned document and its clean copy (poisoned copies whose clean copy was dropped as a
  duplicate are left out of training); help-center documents (COVID-QA FAQ answers, MTRAG passages) are benign
  documents too, since support articles are full of instructions to the reader.
- unsafe_request: unsafe requests (HarmBench, SimpleSafetyTests, Do-Not-Answer) vs safe ones (CyberSecEval's
  benign security requests, WildGuard benign prompts, NotInject prompts, help-center questions); 100-word windows.

Each head's threshold is chosen by 5-fold cross-validation grouped by source document (never a window of a test
document in training), maximising the mean per-class accuracy; the cross-validated figures go into the weights
file's provenance. Then the head is fitted on all rows. Output: `<out>/<head>.json` and `<out>/SHA256SUMS`.

The data (developer splits only) is in training/guardrails/data/, with its sources and licences
(training/guardrails/data/SOURCES.md, licenses/). Training is deterministic on one machine (lbfgs, fixed folds);
another CPU may change the last digits of an embedding, so the weights are rounded to 6 decimals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ragharness.core.fileio import atomic_write_text  # noqa: E402
from ragharness.guardrails.heads import HEADS, windows  # noqa: E402
from ragharness.retrieval.embedders import MiniLMEmbedder  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
OUT = ROOT / "ragharness" / "guardrails" / "weights"
C = {"prompt_attack_input": 4.0, "prompt_attack_context": 4.0, "unsafe_request": 16.0}


@dataclass
class Unit:
    """One training window: which text (group) and class it belongs to, its label and its class for scoring."""

    text: str
    doc: str
    group: str
    label: int
    klass: str
    train: bool = True


@dataclass
class HeadData:
    name: str
    size: int
    stride: int
    features: str
    units: list[Unit] = field(default_factory=list)


def read(path: Path, limit: int | None) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    if limit:  # a few of each category (for the test that runs this script)
        seen: dict[str, int] = defaultdict(int)
        kept = []
        for r in rows:
            key = r["category"] if path.parent.name == "prompt_attacks" else r["label"]
            if seen[key] < limit:
                kept.append(r)
                seen[key] += 1
        rows = kept
    return rows


def injected_span(clean: str, poisoned: str) -> str:
    start = 0
    while start < min(len(clean), len(poisoned)) and clean[start] == poisoned[start]:
        start += 1
    end = 0
    while end < min(len(clean), len(poisoned)) - start and clean[-1 - end] == poisoned[-1 - end]:
        end += 1
    return poisoned[start : len(poisoned) - end]


def overlaps(window: str, span: str, n: int = 6) -> bool:
    """The window shares a run of n consecutive words with the injected span (or holds all of a shorter one)."""
    s, w = span.split(), window.split()
    if len(s) < n:
        return " ".join(s) in " ".join(w)
    grams = {tuple(s[i : i + n]) for i in range(len(s) - n + 1)}
    return any(tuple(w[i : i + n]) in grams for i in range(len(w) - n + 1))


def build(limit: int | None) -> list[HeadData]:
    attacks = read(DATA / "prompt_attacks" / "dev.jsonl", limit)
    unsafe = read(DATA / "unsafe_requests" / "dev.jsonl", limit)
    support = read(DATA / "benign_support" / "dev.jsonl", limit)
    pa_in = HeadData("prompt_attack_input", 100, 50, "window")
    pa_ctx = HeadData("prompt_attack_context", 32, 16, "window+offset")
    us = HeadData("unsafe_request", 100, 50, "window")

    def add(head: HeadData, text: str, doc: str, group: str, label: int, klass: str) -> None:
        for w in windows(text, head.size, head.stride):
            head.units.append(Unit(w, doc, group, label, klass))

    clean = {r["id"].rsplit("_", 1)[0]: r["text"] for r in attacks if r["id"].endswith("_clean")}
    for r in attacks:
        cat = r["category"]
        if cat in ("direct", "chat_prompt", "trigger_word_prompt"):
            add(pa_in, r["text"], r["id"], r["id"], int(cat == "direct"), cat)
        if cat in ("chat_prompt", "trigger_word_prompt"):
            add(us, r["text"], r["id"], r["id"], 0, "safe")
        if cat in ("indirect", "document"):
            base = r["id"].rsplit("_", 1)[0]
            source = clean.get(base)
            span = injected_span(source, r["text"]) if cat == "indirect" and source else ""
            for w in windows(r["text"], pa_ctx.size, pa_ctx.stride):
                known = cat == "document" or bool(span)
                label = int(bool(span) and overlaps(w, span))
                pa_ctx.units.append(Unit(w, r["id"], base, label, cat, train=known))
    for r in unsafe:
        add(pa_in, r["text"], "us:" + r["id"], "us:" + r["id"], 0, "unsafe_request_row")
        add(us, r["text"], r["id"], r["id"], int(r["label"] == "unsafe"), r["label"])
    for r in support:  # help-center questions and documents: benign for every head
        if r["category"] == "question":
            add(pa_in, r["text"], r["id"], r["id"], 0, "support_question")
            add(us, r["text"], r["id"], r["id"], 0, "support_question")
        else:
            add(pa_ctx, r["text"], r["id"], r["id"], 0, "support_document")
    return [pa_in, pa_ctx, us]


def features(head: HeadData, vectors: np.ndarray) -> np.ndarray:
    if head.features == "window":
        return vectors
    docs = np.array([u.doc for u in head.units])
    offset = np.empty_like(vectors)
    for doc in set(docs.tolist()):
        rows = np.where(docs == doc)[0]
        offset[rows] = vectors[rows] - vectors[rows].mean(axis=0, keepdims=True)
    return np.hstack([vectors, offset])


def doc_scores(head: HeadData, rows: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for i, p in zip(rows, probs, strict=True):
        out[head.units[i].doc] = max(out[head.units[i].doc], float(p))
    return out


def per_class(head: HeadData, scores: dict[str, float], threshold: float) -> dict[str, float]:
    """Accuracy per class of text (attack classes must score >= threshold, the others below)."""
    klass = {u.doc: (u.klass, u.label) for u in head.units}
    positive = {k for k, lab in klass.values() if lab == 1} | {"indirect"}
    hits: dict[str, list[bool]] = defaultdict(list)
    for doc, p in scores.items():
        k, _ = klass[doc]
        hits[k].append((p >= threshold) == (k in positive))
    return {k: round(float(np.mean(v)), 4) for k, v in sorted(hits.items())}


def train_head(head: HeadData, vectors: np.ndarray, folds: int) -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    x = features(head, vectors)
    y = np.array([u.label for u in head.units])
    trainable = np.array([u.train for u in head.units])
    groups = np.array([u.group for u in head.units])
    fit: Callable[[np.ndarray], LogisticRegression] = lambda rows: LogisticRegression(  # noqa: E731
        C=C[head.name], max_iter=5000, class_weight="balanced"
    ).fit(x[rows], y[rows])
    cv: dict[str, float] = {}
    idx = np.arange(len(head.units))
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(idx, groups=groups):
        model = fit(train_rows[trainable[train_rows]])
        cv.update(doc_scores(head, test_rows, model.predict_proba(x[test_rows])[:, 1]))
    grid = [round(t, 2) for t in (*np.arange(0.3, 0.96, 0.05), 0.97, 0.98, 0.99)]
    best = max(grid, key=lambda t: (float(np.mean(list(per_class(head, cv, t).values()))), -abs(t - 0.5)))
    model = fit(idx[trainable])
    return {
        "weights": [round(float(w), 6) for w in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
        "threshold": best,
        "cv": per_class(head, cv, best),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="where the weights and SHA256SUMS go")
    ap.add_argument("--limit", type=int, default=None, help="a few rows per class (a smoke test, not a model)")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    import sklearn

    embedder = MiniLMEmbedder(batch_size=64)
    args.out.mkdir(parents=True, exist_ok=True)
    data_sums = {
        p.relative_to(DATA).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(DATA.glob("*/dev.jsonl"))
    }
    for head in build(args.limit):
        t0 = time.perf_counter()
        vectors = np.asarray(embedder.embed([u.text for u in head.units]), dtype=np.float64)
        result = train_head(head, vectors, args.folds)
        record = {
            "name": head.name,
            "embedder": embedder.name,
            "window_words": head.size,
            "window_stride": head.stride,
            "features": head.features,
            "weights": result["weights"],
            "bias": result["bias"],
            "threshold": result["threshold"],
            "provenance": {
                "command": "make train-guardrails" + (f" (--limit {args.limit})" if args.limit else ""),
                "data": ", ".join(f"training/guardrails/data/{k} sha256 {v}" for k, v in data_sums.items()),
                "windows": len(head.units),
                "texts": len({u.doc for u in head.units}),
                "C": C[head.name],
                "cv_folds": args.folds,
                "cv_accuracy_per_class": json.dumps(result["cv"], sort_keys=True),
                "sklearn": sklearn.__version__,
                "python": platform.python_version(),
            },
        }
        path = args.out / f"{head.name}.json"
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")  # a killed run leaves no torn weights
        print(
            f"{head.name}: {len(head.units)} windows, threshold {result['threshold']}, cross-validated "
            f"accuracy per class {result['cv']} ({time.perf_counter() - t0:.0f} s)"
        )
    sums = [f"{hashlib.sha256((args.out / f'{h}.json').read_bytes()).hexdigest()}  {h}.json" for h in sorted(HEADS)]
    atomic_write_text(args.out / "SHA256SUMS", "\n".join(sums) + "\n")
    print("\n".join(sums))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

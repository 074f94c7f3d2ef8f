"""Calibrate the local contextual-grounding scores on human relevance judgements.

    python benchmarks/relevance_calibration.py ../shared/data/covid_faq_beir \
        --offtopic ../shared/data/mtrag_faithfulness/dev.jsonl

For every COVID-QA question with a judged relevant FAQ answer, the MiniLM cosine similarity between the question and
that answer is a positive. Two kinds of negative (seed 0), two logistic curves in ragharness/guardrails/local.py:
- GROUNDING: another FAQ answer of the same corpus (same topic, other content: does this content back the text);
- RELEVANCE: a passage of another domain (the MTRAG passages: government, IBM Cloud, finance, Wikipedia), i.e. is
  the context on the question's topic at all.
Prints each fitted slope and intercept, the cosine at which P = 0.5 and 0.68, and the AUC; headline figures last.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragharness.guardrails.local import GROUNDING, RELEVANCE
from ragharness.retrieval.embedders import MiniLMEmbedder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv")
    ap.add_argument("--offtopic", type=Path, help="MTRAG dev.jsonl: its passages are the off-topic negatives")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    corpus = {}
    for line in (args.dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        corpus[r["_id"]] = r["text"]
    queries = {}
    for line in (args.dir / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        queries[r["_id"]] = r["text"]
    qrels: dict[str, set[str]] = {}
    with (args.dir / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if row[0] != "query-id" and int(row[2]) > 0:
                qrels.setdefault(row[0], set()).add(row[1])
    ids = list(corpus)
    qids = [q for q in queries if q in qrels]
    embedder = MiniLMEmbedder()
    docs = np.asarray(embedder.embed([corpus[c] for c in ids]))
    qs = np.asarray(embedder.embed([queries[q] for q in qids]))
    sims = qs @ docs.T
    rng = np.random.default_rng(0)
    pos, neg = [], []
    for i, q in enumerate(qids):
        rel = [j for j, c in enumerate(ids) if c in qrels[q]]
        pos.append(float(sims[i, rel].max()))
        j = int(rng.integers(len(ids)))
        while ids[j] in qrels[q]:
            j = int(rng.integers(len(ids)))
        neg.append(float(sims[i, j]))
    print(f"questions: {len(qids)}; relevant cosine median {np.median(pos):.3f}, other FAQ answer {np.median(neg):.3f}")
    curves = {"grounding": (neg, GROUNDING)}
    if args.offtopic:
        passages = sorted(
            {
                c["text"]
                for line in args.offtopic.read_text(encoding="utf-8").splitlines()
                for c in json.loads(line)["contexts"]
            }
        )
        other = np.asarray(embedder.embed(passages))
        off = [float(qs[i] @ other[int(rng.integers(len(passages)))]) for i in range(len(qids))]
        print(f"off-topic passage cosine median {np.median(off):.3f} ({len(passages)} passages)")
        curves["relevance"] = (np.asarray(off), RELEVANCE)
    for name, (negatives, shipped) in curves.items():
        x = np.r_[pos, negatives][:, None]
        y = np.r_[np.ones(len(pos)), np.zeros(len(negatives))]
        model = LogisticRegression(C=100).fit(x, y)
        slope, intercept = float(model.coef_[0][0]), float(model.intercept_[0])
        print(f"{name}: shipped slope {shipped[0]}, intercept {shipped[1]}")
        print(f"{name}_slope: {slope:.2f}")
        print(f"{name}_intercept: {intercept:.2f}")
        print(f"{name}_cosine_at_p50: {-intercept / slope:.3f}")
        print(f"{name}_cosine_at_p68: {(np.log(0.68 / 0.32) - intercept) / slope:.3f}")
        print(f"{name}_auc: {roc_auc_score(y, x[:, 0]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Retrieval quality on any BEIR-layout dataset, through the same import, ingest and search path as a run.

    python benchmarks/retrieval_quality.py BEIR_DIR [--split test] [--k 10]

e.g. BEIR_DIR = ../shared/data/covid_faq_beir. Prints nDCG@k and recall@k per mode with the default retrieval
settings (retrieval.text_analysis: English stemming and stop words; retrieval.fusion: linear min-max, BM25 0.3 /
vector 0.7); `hybrid_vs_best_single` is hybrid's nDCG over the better of vector and BM25 in the same run (>= 1:
fusion is not losing to a single mode). Headline last.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ragharness.analysis.retrieval import evaluate_retrieval
from ragharness.goldset import load_goldset
from ragharness.ingest.pipeline import ingest
from ragharness.pipeline.components import build_embedder, build_redactor, open_store
from ragharness.pipeline.config import load_config
from ragharness.retrieval.beir import import_beir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = import_beir(a.beir_dir, Path(tmp), split=a.split)
        cfg = load_config(Path(tmp) / "harness.yaml")
        embedder = build_embedder(cfg)
        store = open_store(cfg, embedder)
        report = ingest(cfg.ingest_settings(), embedder, store, redactor=build_redactor(cfg))
        result = evaluate_retrieval(load_goldset(cfg.resolve(cfg.goldset)).items, embedder, store, k=a.k)
    print(f"documents: {counts['documents']}")
    print(f"queries: {counts['queries']}")
    print(f"chunks: {report.chunks_total}")
    for m in result.modes:
        print(f"{m.mode.value}_recall@{a.k}: {m.overall['recall']:.4f}")
        print(f"{m.mode.value}_mrr@{a.k}: {m.overall['mrr']:.4f}")
        print(f"{m.mode.value}_p50_ms: {m.latency_p50_ms:.1f}")
    for m in result.modes:
        if m.mode.value != "hybrid":
            print(f"{m.mode.value}_ndcg@{a.k}: {m.overall['ndcg']:.4f}")
    hybrid = next(m for m in result.modes if m.mode.value == "hybrid")
    best = max(m.overall["ndcg"] for m in result.modes if m.mode.value != "hybrid")
    fusion = cfg.retrieval.fusion
    print(f"fusion: {fusion.method} {fusion.normalization} bm25={fusion.bm25_weight}")
    print(f"hybrid_vs_best_single: {hybrid.overall['ndcg'] / best:.4f}")
    print(f"hybrid_ndcg@{a.k}: {hybrid.overall['ndcg']:.4f}")


if __name__ == "__main__":
    main()

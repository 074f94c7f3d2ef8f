"""Figures for the README's demo: ingest of the example corpus, re-ingest with nothing changed, the run itself.

    python benchmarks/demo.py [--config goldsets/support/harness.yaml]

Runs in a temporary copy so the user's store is untouched. (Ingest against the embedder alone and memory at
100k chunks: benchmarks/ingest.py.) Headline figures last, one per line, as `name: value`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ragharness.ingest.pipeline import ingest
from ragharness.pipeline.components import build_embedder, build_redactor, build_store
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run

sys.path.insert(0, str(Path(__file__).parent))
from _synth import portable_copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="goldsets/support/harness.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(portable_copy(Path(args.config).resolve(), Path(tmp)))
        t0 = time.perf_counter()
        embedder = build_embedder(cfg)
        embedder.embed(["warm up"])
        build_store(cfg)  # model load and LanceDB import, paid once per process
        startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        first = ingest(cfg.ingest_settings(), embedder, build_store(cfg), redactor=build_redactor(cfg))
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest(cfg.ingest_settings(), embedder, build_store(cfg), redactor=build_redactor(cfg))
        reingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = execute_run(cfg, log=lambda s: None, skip_ingest=True)
        run_s = time.perf_counter() - t0
    print(f"documents: {first.documents_seen}")
    print(f"chunks: {first.chunks_written}")
    print(f"gold_items: {result.summary.n_items}")
    print(f"candidates: {len(result.summary.candidates)}")
    print(f"startup_s: {startup_s:.2f}")
    print(f"reingest_embedded: {again.chunks_embedded}")
    print(f"ingest_s: {ingest_s:.2f}")
    print(f"ingest_chunks_per_s: {first.chunks_written / ingest_s:.1f}")
    print(f"reingest_s: {reingest_s:.3f}")
    print(f"demo_run_s_excluding_ingest: {run_s:.2f}")


if __name__ == "__main__":
    main()

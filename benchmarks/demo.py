"""Figures for the example corpus: ingest throughput (vs. the embedder alone), re-ingest, demo run time.

    python benchmarks/demo.py [--config goldsets/support/harness.yaml]

Runs in a temporary data/output directory so the user's store is untouched. Headline figures are printed
last, one per line, as `name: value`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ragharness.components import build_embedder, build_store
from ragharness.config import load_config
from ragharness.eval.run import execute_run
from ragharness.ingest.chunking import Chunker, embedding_input
from ragharness.ingest.pipeline import ingest, load_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="goldsets/support/harness.yaml")
    args = parser.parse_args()
    src = Path(args.config).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(src, project)
        cfg_file = project / Path(args.config).name
        text = cfg_file.read_text()
        text = text.replace("../../.ragharness/support", str(Path(tmp) / "data")).replace(
            "../../runs", str(Path(tmp) / "runs")
        )
        cfg_file.write_text(text)
        cfg = load_config(cfg_file)
        embedder = build_embedder(cfg)
        embedder.embed(["warm up the model so load time is not counted as ingest"])
        build_store(cfg)  # import LanceDB (~2.5 s, paid once per process) outside the timed region

        t0 = time.perf_counter()
        first = ingest(cfg, embedder, build_store(cfg))
        ingest_s = time.perf_counter() - t0

        docs, _, _ = load_corpus(cfg)
        chunker = Chunker(embedder, cfg.chunking.chunk_size, cfg.chunking.chunk_overlap)
        inputs = [embedding_input(c) for d in docs for c in chunker.split(d)]
        t0 = time.perf_counter()
        for start in range(0, len(inputs), cfg.embedder.batch_size):
            embedder.embed(inputs[start : start + cfg.embedder.batch_size])
        embed_only_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        again = ingest(cfg, embedder, build_store(cfg))
        reingest_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        result = execute_run(cfg, log=lambda s: None, skip_ingest=True)
        run_s = time.perf_counter() - t0

        print(f"documents: {first.documents_seen}")
        print(f"chunks: {first.chunks_written}")
        print(f"gold_items: {result.summary.n_items}")
        print(f"candidates: {len(result.summary.candidates)}")
        print(f"embedder_only_s: {embed_only_s:.2f}")
        print(f"reingest_embedded: {again.chunks_embedded}")
        print(f"demo_run_s_excluding_ingest: {run_s:.2f}")
        print(f"ingest_s: {ingest_s:.2f}")
        print(f"ingest_chunks_per_s: {first.chunks_written / ingest_s:.1f}")
        print(f"ingest_vs_embedder: {embed_only_s / ingest_s:.2f}")
        print(f"reingest_s: {reingest_s:.3f}")
        print(f"reingest_fraction: {reingest_s / ingest_s:.3f}")


if __name__ == "__main__":
    main()

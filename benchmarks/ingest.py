"""Ingest throughput against the embedder alone, re-ingest of an unchanged corpus, and peak memory at 100k chunks.

    python benchmarks/ingest.py [CORPUS_HARNESS_YAML] [--rss-chunks 100000] [--skip-rss]

1. Ingests the corpus of the given harness.yaml (default: the example, goldsets/support/harness.yaml) into a
   fresh temporary store, then embeds the very same chunk texts with the embedder alone, in the same process
   (model already warm): ingest_vs_embedder = embedder-alone time / ingest time (target >= 0.90).
2. Re-ingests the unchanged corpus: reingest_fraction = re-ingest time / first ingest time (target <= 0.05).
3. In a child process, ingests a synthetic corpus of --rss-chunks chunks (real MiniLM, real LanceDB) and reads
   the child's peak RSS: peak_rss_gib_100k (target < 2 GiB). This takes a while (~100 chunks/s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ragharness.ingest.chunking import Chunker, embedding_input
from ragharness.ingest.pipeline import ingest, load_corpus
from ragharness.pipeline.components import build_embedder, build_redactor, build_store
from ragharness.pipeline.config import load_config

sys.path.insert(0, str(Path(__file__).parent))
from _synth import portable_copy, write_ticket_corpus


def child(n_chunks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg_file = write_ticket_corpus(Path(tmp), n_chunks)
        cfg = load_config(cfg_file)
        t0 = time.perf_counter()
        report = ingest(cfg.ingest_settings(), build_embedder(cfg), build_store(cfg), redactor=build_redactor(cfg))
        print(f"child_chunks: {report.chunks_written}")
        print(f"child_seconds: {time.perf_counter() - t0:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="goldsets/support/harness.yaml")
    ap.add_argument("--rss-chunks", type=int, default=100_000)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(portable_copy(Path(a.config).resolve(), Path(tmp)))
        embedder = build_embedder(cfg)
        embedder.embed(["warm-up"])
        build_store(cfg)  # LanceDB import (~2.5 s) outside the timed region
        t0 = time.perf_counter()
        first = ingest(cfg.ingest_settings(), embedder, build_store(cfg), redactor=build_redactor(cfg))
        ingest_s = time.perf_counter() - t0
        docs, _, _ = load_corpus(cfg.ingest_settings())
        chunker = Chunker(embedder, cfg.chunking.chunk_size, cfg.chunking.chunk_overlap)
        texts = list(dict.fromkeys(embedding_input(c) for d in docs for c in chunker.split(d)))
        t0 = time.perf_counter()
        for start in range(0, len(texts), cfg.embedder.batch_size):
            embedder.embed(texts[start : start + cfg.embedder.batch_size])
        embed_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest(cfg.ingest_settings(), embedder, build_store(cfg), redactor=build_redactor(cfg))
        reingest_s = time.perf_counter() - t0
    print(f"chunks: {first.chunks_written}")
    print(f"ingest_s: {ingest_s:.2f}")
    print(f"embedder_only_s: {embed_s:.2f}")
    print(f"reingest_s: {reingest_s:.3f}")
    print(f"reingest_embedded: {again.chunks_embedded}")
    rss = None
    if not a.skip_rss:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(a.rss_chunks)], capture_output=True, text=True, check=True
        )
        print(proc.stdout.strip())
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB
    print(f"ingest_vs_embedder: {embed_s / ingest_s:.3f}")
    print(f"reingest_fraction: {reingest_s / ingest_s:.4f}")
    if rss is not None:
        print(f"peak_rss_gib_{a.rss_chunks // 1000}k: {rss:.2f}")


if __name__ == "__main__":
    main()

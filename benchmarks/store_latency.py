"""Embedded store query latency (LanceDB) at 10k and 100k chunks: vector, BM25 and hybrid, p50/p95.

    python benchmarks/store_latency.py [--sizes 10000,100000] [--queries 200]

Chunks are synthetic (random unit vectors, 384-d; support-like text); query vectors are precomputed, so the
figures exclude the query embedding. Half the queries carry a metadata filter (product). Headline last.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ragharness.core.types import Chunk, EmbeddedChunk, Metadata, SearchMode, sha256_text
from ragharness.retrieval.lancedb_store import LanceDBStore
from ragharness.retrieval.store import SearchRequest
from ragharness.runs.summary import percentile

sys.path.insert(0, str(Path(__file__).parent))
from _synth import sentence

DIM = 384


def fill(store: LanceDBStore, n: int, rng: random.Random, np_rng: np.random.Generator) -> None:
    store.ensure("bench:random", DIM)
    batch = 5000
    for start in range(0, n, batch):
        vecs = np_rng.standard_normal((min(batch, n - start), DIM)).astype("float32")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        rows = []
        for i, v in enumerate(vecs, start=start):
            text = " ".join(sentence(rng, 9) for _ in range(5))
            c = Chunk(
                chunk_id=f"d{i}#0",
                doc_id=f"d{i}",
                position=0,
                text=text,
                content_hash=sha256_text(text),
                metadata=Metadata(product=rng.choice(["vault", "relay", "ledger"])),
            )
            rows.append(EmbeddedChunk(chunk=c, vector=tuple(float(x) for x in v)))
        store.upsert(rows)
    store.publish()  # as at the end of an ingest: indexes brought up to date (ANN from 50k rows)


def measure(store: LanceDBStore, mode: SearchMode, queries: list[tuple[str, tuple[float, ...], dict]]) -> list[float]:
    out = []
    for text, vec, filters in queries:
        req = SearchRequest(
            mode=mode, k=10, text=text, vector=None if mode is SearchMode.bm25 else vec, filters=filters
        )
        t0 = time.perf_counter()
        store.search(req)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    a = ap.parse_args()
    rng, np_rng = random.Random(0), np.random.default_rng(0)
    headline = {}
    for n in (int(s) for s in a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            store = LanceDBStore(Path(tmp), table="bench")
            t0 = time.perf_counter()
            fill(store, n, rng, np_rng)
            print(f"build_s_{n // 1000}k: {time.perf_counter() - t0:.1f}")
            qv = np_rng.standard_normal((a.queries, DIM)).astype("float32")
            qv /= np.linalg.norm(qv, axis=1, keepdims=True)
            queries = [
                (sentence(rng, 4), tuple(float(x) for x in v), {"product": "vault"} if i % 2 else {})
                for i, v in enumerate(qv)
            ]
            for mode in SearchMode:
                measure(store, mode, queries[:10])  # warm-up
                lat = measure(store, mode, queries)
                p50, p95 = percentile(lat, 50), percentile(lat, 95)
                print(f"{mode.value}_p50_ms_{n // 1000}k: {p50:.1f}")
                print(f"{mode.value}_p95_ms_{n // 1000}k: {p95:.1f}")
                headline[(mode, n)] = p50
    biggest = max(n for _, n in headline)
    print(f"hybrid_p50_ms_{biggest // 1000}k: {headline[(SearchMode.hybrid, biggest)]:.1f}")


if __name__ == "__main__":
    main()

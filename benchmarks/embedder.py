"""The MiniLM embedder on ONNX Runtime (what the runtime ships) against the reference, sentence-transformers on
PyTorch (the dev extra), on the same texts: throughput of each, their ratio, and the largest vector difference.

    python benchmarks/embedder.py [--texts 512] [--words 50]

Texts are drawn from the example corpus (chunk-sized windows of its words). Headline figures last.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


def corpus_texts(n: int, words: int) -> list[str]:
    vocab = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "goldsets/support/corpus").rglob("*.md")))
    tokens = vocab.split()
    rng = random.Random(11)
    out = []
    for _ in range(n):
        start = rng.randrange(0, max(1, len(tokens) - words))
        out.append(" ".join(tokens[start : start + rng.randint(max(1, words // 4), words * 2)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--words", type=int, default=50)
    args = ap.parse_args()
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from ragharness.retrieval.embedders import MiniLMEmbedder

    texts = corpus_texts(args.texts, args.words)
    onnx = MiniLMEmbedder(batch_size=64)
    start = time.perf_counter()
    onnx.embed(["warm up"])
    load_s = time.perf_counter() - start
    reference = SentenceTransformer(str(onnx._model_dir()), device="cpu")
    reference.encode(["warm up"])
    best: dict[str, float] = {}
    got = want = None
    for _ in range(2):  # alternate, best of two each: the machine's load falls on both alike
        start = time.perf_counter()
        got = np.array(onnx.embed(texts))
        best["onnx"] = min(best.get("onnx", 1e9), time.perf_counter() - start)
        start = time.perf_counter()
        want = reference.encode(texts, batch_size=64, normalize_embeddings=True)
        best["torch"] = min(best.get("torch", 1e9), time.perf_counter() - start)
    assert got is not None and want is not None
    print(f"texts: {len(texts)}")
    print(f"onnx_load_s: {load_s:.2f}")
    print(f"minilm_torch_texts_per_s: {len(texts) / best['torch']:.1f}")
    print(f"minilm_onnx_max_abs_diff: {float(np.abs(got - want).max()):.2e}")
    print(f"minilm_onnx_texts_per_s: {len(texts) / best['onnx']:.1f}")
    print(f"onnx_vs_torch_speed_ratio: {best['torch'] / best['onnx']:.2f}")


if __name__ == "__main__":
    main()

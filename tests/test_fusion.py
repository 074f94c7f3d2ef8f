"""Hybrid fusion (RRF with its rank constant and weights; linear with min-max or L2 normalisation and weights) as
OpenSearch's score-ranker and normalization processors compute it, and the same fused list from the embedded
store's and OpenSearch's client-side paths on the same candidate lists."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ragharness.retrieval.settings import Fusion, TextAnalysis
from ragharness.retrieval.store import MIN_SCORE, fuse

BM25 = [("a", 12.0), ("b", 8.0), ("c", 2.0)]
VEC = [("b", 0.9), ("d", 0.8), ("a", 0.5)]


def test_rrf_rewards_agreement_and_honours_rank_constant_and_weights() -> None:
    fused = dict(fuse([BM25, VEC], Fusion(method="rrf", rrf_k=60, bm25_weight=0.5), k=4))
    assert fused["b"] == pytest.approx(0.5 / 62 + 0.5 / 61)  # ranks 2 and 1
    assert next(iter(fused)) == "b"
    heavy_vec = fuse([BM25, VEC], Fusion(method="rrf", rrf_k=1, bm25_weight=0.1), k=4)
    assert [key for key, _ in heavy_vec][:2] == ["b", "d"]  # a small rank constant and a 0.9 vector weight
    assert dict(heavy_vec)["d"] == pytest.approx(0.9 / 3)


def test_linear_min_max_is_the_normalization_processors_weighted_mean() -> None:
    f = Fusion(method="linear", normalization="min_max", bm25_weight=0.3)
    fused = dict(fuse([BM25, VEC], f, k=4))
    # BM25 min-max: a 1, b 0.6, c 0 -> MIN_SCORE; vector: b 1, d 0.75, a 0 -> MIN_SCORE; missing = 0
    assert fused["a"] == pytest.approx(0.3 * 1.0 + 0.7 * MIN_SCORE)
    assert fused["b"] == pytest.approx(0.3 * 0.6 + 0.7 * 1.0)
    assert fused["d"] == pytest.approx(0.7 * 0.75)
    assert fused["c"] == pytest.approx(0.3 * MIN_SCORE)
    assert list(fused) == ["b", "d", "a", "c"]


def test_linear_l2_and_single_result_lists() -> None:
    fused = dict(fuse([BM25, VEC], Fusion(method="linear", normalization="l2", bm25_weight=0.5), k=4))
    norm_b, norm_v = math.sqrt(144 + 64 + 4), math.sqrt(0.81 + 0.64 + 0.25)
    assert fused["a"] == pytest.approx(0.5 * 12 / norm_b + 0.5 * 0.5 / norm_v)
    single = dict(fuse([[("x", 3.0)], []], Fusion(method="linear"), k=1))
    assert single["x"] == pytest.approx(0.3)  # a lone result normalises to 1, weighted by 0.3


def test_signatures_change_with_every_setting() -> None:
    assert TextAnalysis().signature() != TextAnalysis(stem=False).signature()
    assert Fusion().signature() != Fusion(bm25_weight=0.4).signature()
    assert Fusion().weights == (0.3, 0.7)


@pytest.mark.parametrize(
    "fusion", [Fusion(), Fusion(method="rrf", bm25_weight=0.5), Fusion(method="linear", normalization="l2")]
)
def test_embedded_and_opensearch_client_paths_fuse_the_same_lists_the_same_way(fusion: Fusion) -> None:
    from ragharness.core.types import SearchMode
    from ragharness.retrieval.lancedb_store import LanceDBStore
    from ragharness.retrieval.opensearch_store import OpenSearchOptions, OpenSearchStore
    from ragharness.testing.store import TEXTS, chunk, req

    sources = {f"{d}#{p}": chunk(d, p, r, t).chunk for (d, p, r), t in TEXTS.items()}
    lex_ids, vec_ids = ["sync#0", "refunds#1", "sso#0"], ["sso#0", "sync#0", "refunds#0"]
    lex_scores, vec_sims = [7.5, 3.2, 1.1], [0.91, 0.72, 0.40]

    class Client:
        def search(self, index: str, body: dict[str, Any], params: Any = None) -> dict[str, Any]:
            knn = "knn" in body["query"]
            ids, scores = (vec_ids, [(s + 1) / 2 for s in vec_sims]) if knn else (lex_ids, lex_scores)
            hits = []
            for cid, score in zip(ids, scores, strict=True):
                c = sources[cid]
                src = {**c.model_dump(exclude={"metadata"}), **c.metadata.model_dump(), "tags": list(c.metadata.tags)}
                hits.append({"_source": src, "_score": score})
            return {"hits": {"hits": hits}}

    opts = OpenSearchOptions(url="http://x", hybrid="client", engine="lucene")  # cosinesimil: (1 + cos) / 2
    os_store = OpenSearchStore(opts, alias="a", client=Client(), fusion=fusion)
    os_store._index = "a-v1"
    request = req(SearchMode.hybrid, "sync conflict", k=4)
    os_hits = os_store.search(request)

    def row(cid: str, score: float) -> dict[str, Any]:
        c = sources[cid]
        return {
            **c.model_dump(exclude={"metadata"}),
            **c.metadata.model_dump(),
            "tags": list(c.metadata.tags),
            "_score": score,
        }

    lance = LanceDBStore.__new__(LanceDBStore)
    lance.fusion = fusion
    lance_hits = lance._hits(
        request,
        [row(c, s) for c, s in zip(vec_ids, vec_sims, strict=True)],
        [row(c, s) for c, s in zip(lex_ids, lex_scores, strict=True)],
    )
    assert [(h.chunk.chunk_id, round(h.score, 9)) for h in os_hits] == [
        (h.chunk.chunk_id, round(h.score, 9)) for h in lance_hits
    ]
    assert len(os_hits) == 4

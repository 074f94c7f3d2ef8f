from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from contract_store import StoreContract
from ragharness.retrieval.lancedb_store import LanceDBStore, where_clause
from ragharness.retrieval.store import VectorStore, rrf_fuse


class TestLanceDBStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], VectorStore]:
        return lambda: LanceDBStore(tmp_path / "lance", table="chunks")


def test_where_clause_quotes_values() -> None:
    assert where_clause({"region": "eu", "plan": ["pro", "o'brien"]}) == (
        "plan IN ('pro', 'o''brien') AND region = 'eu'"
    )
    assert where_clause({}) is None


def test_rrf_fuse_rewards_agreement() -> None:
    fused = rrf_fuse([["a", "b", "c"], ["b", "d"]], k=3)
    assert fused[0][0] == "b"
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert [k for k, _ in fused] == ["b", "a", "d"]


def test_ann_index_is_built_at_publish_and_search_still_finds_the_best_match(tmp_path: Path) -> None:
    from contract_store import EMB, chunk, req
    from ragharness.types import SearchMode

    store = LanceDBStore(tmp_path / "lance", table="chunks", ann_min_rows=300)
    store.ensure(EMB.name, EMB.dimension)
    words = ["refund", "invoice", "password", "storage", "sync", "webhook", "payout", "region", "plan", "quota"]
    rows = [chunk(f"d{i}", 0, "us", f"{words[i % 10]} {words[(i * 7) % 10]} note number {i}") for i in range(400)]
    store.upsert(rows)
    store.publish()
    assert store._has_vector_index()
    hit = store.search(req(SearchMode.vector, rows[123].chunk.text, k=3))[0]
    assert hit.chunk.text.split()[:2] == rows[123].chunk.text.split()[:2]
    assert [h.chunk.chunk_id for h in store.search(req(SearchMode.bm25, "number 123", k=1))] == ["d123#0"]

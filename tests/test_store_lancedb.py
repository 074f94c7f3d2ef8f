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

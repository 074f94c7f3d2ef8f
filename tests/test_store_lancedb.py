from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ragharness.retrieval.lancedb_store import LanceDBStore, where_clause
from ragharness.retrieval.store import VectorStore
from ragharness.testing.store import StoreContract, VectorSearchContract


class TestLanceDBStore(VectorSearchContract, StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[..., VectorStore]:
        return lambda analysis=None: LanceDBStore(tmp_path / "lance", table="chunks", analysis=analysis)


def test_where_clause_quotes_values() -> None:
    assert where_clause({"region": "eu", "plan": ["pro", "o'brien"]}) == (
        "plan IN ('pro', 'o''brien') AND region = 'eu'"
    )
    assert where_clause({}) is None


def test_ann_index_is_built_at_publish_and_search_still_finds_the_best_match(tmp_path: Path) -> None:
    from ragharness.core.types import SearchMode
    from ragharness.testing.store import EMB, chunk, req

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


def _open(path: Path) -> LanceDBStore:
    from ragharness.testing.store import EMB

    store = LanceDBStore(path, table="chunks")
    store.ensure(EMB.name, EMB.dimension)
    return store


def test_readers_see_only_the_published_version(tmp_path: Path) -> None:
    from ragharness.testing.store import chunk, corpus

    writer = _open(tmp_path / "lance")
    writer.upsert(corpus())
    writer.publish()
    writer.delete_documents(["refunds", "sso"])  # an ingest half done: not published
    writer.upsert([chunk("new", 0, "us", "A brand new unpublished page.")])
    reader = _open(tmp_path / "lance")
    assert reader.count() == 5
    assert reader.name == writer.name  # both name the published version
    writer.publish()
    assert _open(tmp_path / "lance").count() == 3


def test_next_ingest_undoes_what_a_killed_one_wrote(tmp_path: Path) -> None:
    from ragharness.testing.store import chunk, corpus

    first = _open(tmp_path / "lance")
    first.upsert(corpus())
    first.publish()
    first.delete_documents(["refunds"])  # killed here: never published
    first.upsert([chunk("half", 0, "us", "Half written.")])
    second = _open(tmp_path / "lance")
    assert second.begin_write() == 0
    assert sorted(second.document_hashes()) == ["refunds", "refunds-eu", "sso", "sync"]


def test_killed_rebuild_leaves_the_old_table_in_force(tmp_path: Path) -> None:
    from ragharness.testing.store import chunk, corpus

    store = _open(tmp_path / "lance")
    store.upsert(corpus())
    store.publish()
    store.rebuild()
    store.upsert([chunk("fresh", 0, "eu", "Only in the rebuild.")])  # killed before publish()
    again = _open(tmp_path / "lance")
    assert again.count() == 5
    again.begin_write()  # the orphaned build table is dropped
    assert [t for t in again._db.list_tables().tables if t.startswith("chunks__")] == []
    assert again.count() == 5


def test_begin_write_repairs_duplicate_rows(tmp_path: Path) -> None:
    from ragharness.retrieval.store import chunk_record
    from ragharness.testing.store import corpus

    store = _open(tmp_path / "lance")
    store.upsert(corpus())
    rows = [{**chunk_record(ec.chunk), "vector": list(ec.vector)} for ec in corpus()[:3]]
    store._t().add(rows)  # what two unlocked writers used to leave behind
    store.publish()
    assert store.count() == 8
    assert store.begin_write() == 3
    store.publish()
    assert store.count() == 5
    assert len(store.document_hashes()) == 4

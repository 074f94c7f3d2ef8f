"""Contract suite for the VectorStore seam. Every store implementation subclasses `StoreContract` (writes,
incremental ingest, BM25 search, filters, rebuild and publish) and provides the `make_store` fixture (a factory
returning a fresh store over the same backing location on each call). A store that also searches by vector
(k-NN and hybrid) inherits `VectorSearchContract` too, which runs every search test in every mode:

    class TestMyStore(VectorSearchContract, StoreContract): ...

A backend without vector search opts out by not inheriting it (no flags, no skips)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ragharness.core.errors import StoreError
from ragharness.core.types import Chunk, EmbeddedChunk, Metadata, SearchMode, sha256_text
from ragharness.retrieval.embedders import HashingEmbedder
from ragharness.retrieval.settings import TextAnalysis
from ragharness.retrieval.store import SearchRequest, VectorStore

EMB = HashingEmbedder(32)

TEXTS = {
    ("refunds", 0, "us"): "Annual plans can be refunded within 30 days of purchase.",
    ("refunds", 1, "us"): "Monthly plans can be refunded within 7 days of the charge.",
    ("refunds-eu", 0, "eu"): "EU customers can withdraw within 14 days of purchase.",
    ("sso", 0, ""): "Single sign-on with SAML requires the Enterprise plan and a verified domain.",
    ("sync", 0, ""): "Error VX-409 means a sync conflict between two devices.",
}


def chunk(doc: str, pos: int, region: str, text: str, doc_hash: str = "h1") -> EmbeddedChunk:
    meta = Metadata(product="vault", region=region, plan="all", tags=("kb", doc))
    c = Chunk(
        chunk_id=f"{doc}#{pos}",
        doc_id=doc,
        position=pos,
        text=text,
        title=f"{doc} title",
        section="S",
        source=f"{doc}.md",
        source_type="markdown",
        metadata=meta,
        content_hash=sha256_text(text),
        doc_hash=doc_hash,
        n_tokens=len(text.split()),
    )
    return EmbeddedChunk(chunk=c, vector=tuple(EMB.embed([text])[0]))


def corpus() -> list[EmbeddedChunk]:
    return [chunk(d, p, r, t) for (d, p, r), t in TEXTS.items()]


def req(mode: SearchMode, text: str, k: int = 3, **filters: str | list[str]) -> SearchRequest:
    vector = tuple(EMB.embed([text])[0]) if mode is not SearchMode.bm25 else None
    return SearchRequest(mode=mode, k=k, text=text, vector=vector, filters=filters)


class StoreContract:
    modes: tuple[SearchMode, ...] = (SearchMode.bm25,)
    """The search modes the store's search tests run in (BM25; `VectorSearchContract` adds vector and hybrid)."""

    @pytest.fixture(params=[SearchMode.bm25], ids=str)
    def mode(self, request: pytest.FixtureRequest) -> SearchMode:
        return SearchMode(request.param)

    @pytest.fixture
    def make_store(self) -> Callable[..., VectorStore]:
        """A factory: `make_store(analysis=None)` returns a fresh store over the same backing location."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, make_store: Callable[..., VectorStore]) -> VectorStore:
        s = make_store()
        s.ensure(EMB.name, EMB.dimension)
        return s

    @pytest.fixture
    def filled(self, store: VectorStore) -> VectorStore:
        store.upsert(corpus())
        store.publish()
        return store

    def test_empty_store_searches_return_nothing(self, store: VectorStore) -> None:
        assert store.count() == 0
        for mode in self.modes:
            assert store.search(req(mode, "refund")) == []

    def test_upsert_and_count(self, filled: VectorStore) -> None:
        assert filled.count() == len(TEXTS)

    def test_upsert_same_id_updates_instead_of_duplicating(self, filled: VectorStore) -> None:
        filled.upsert([chunk("sync", 0, "", "Error VX-409 now means something else entirely.")])
        filled.upsert([chunk("sync", 0, "", "Error VX-409 now means something else entirely.")])
        filled.publish()
        assert filled.count() == len(TEXTS)
        hits = filled.search(req(SearchMode.bm25, "entirely"))
        assert [h.chunk.chunk_id for h in hits] == ["sync#0"]
        assert filled.vectors_for([sha256_text("Error VX-409 now means something else entirely.")])

    def test_best_match_first_in_every_mode(self, filled: VectorStore, mode: SearchMode) -> None:
        hits = filled.search(req(mode, "single sign-on SAML enterprise verified domain"))
        assert hits[0].chunk.chunk_id == "sso#0"
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert len(hits) <= 3

    def test_filters_apply_in_every_mode(self, filled: VectorStore, mode: SearchMode) -> None:
        hits = filled.search(req(mode, "refunded within days of purchase", k=5, region="eu"))
        assert [h.chunk.chunk_id for h in hits] == ["refunds-eu#0"]
        hits = filled.search(req(mode, "refunded within days of purchase", k=5, region=["us", "eu"]))
        assert {h.chunk.doc_id for h in hits} <= {"refunds", "refunds-eu"}
        assert len(hits) == 3

    def test_search_many_equals_one_search_at_a_time(self, filled: VectorStore) -> None:
        requests = [
            req(mode, text, k=3, **filters)
            for mode in self.modes
            for text, filters in (
                ("refunded within days of purchase", {"region": "eu"}),
                ("single sign-on SAML", {}),
                ("VX-409 conflict", {"region": ["us", ""]}),
            )
        ]
        many = filled.search_many(requests)
        assert [[(h.chunk.chunk_id, h.rank) for h in hits] for hits in many] == [
            [(h.chunk.chunk_id, h.rank) for h in filled.search(r)] for r in requests
        ]
        assert filled.search_many([]) == []

    def test_unknown_filter_field_is_refused(self, filled: VectorStore) -> None:
        with pytest.raises(StoreError, match="not filterable"):
            filled.search(req(SearchMode.bm25, "x", colour="red"))

    def test_filter_values_are_data_not_code(self, filled: VectorStore) -> None:
        hits = filled.search(req(SearchMode.bm25, "refund", region="us' OR '1'='1"))
        assert hits == []

    def test_chunk_fields_round_trip(self, filled: VectorStore) -> None:
        hit = filled.search(req(SearchMode.bm25, "VX-409 conflict"))[0]
        original = next(c.chunk for c in corpus() if c.chunk.chunk_id == "sync#0")
        assert hit.chunk == original

    def test_delete_documents_removes_all_their_chunks(self, filled: VectorStore) -> None:
        assert filled.delete_documents(["refunds"]) == 2
        filled.publish()
        assert filled.count() == len(TEXTS) - 2
        assert all(h.chunk.doc_id != "refunds" for h in filled.search(req(SearchMode.bm25, "refunded", k=5)))
        assert filled.delete_documents([]) == 0

    def test_delete_keeps_the_chunks_just_rewritten(self, filled: VectorStore) -> None:
        """Ingest writes a changed document's new chunks first, then deletes only the stale ones."""
        filled.upsert([chunk("refunds", 0, "us", "Annual plans are refundable for 60 days now.", doc_hash="h2")])
        assert filled.delete_documents(["refunds"], keep_chunk_ids={"refunds#0"}) == 1
        filled.publish()
        hits = filled.search(req(SearchMode.bm25, "refundable", k=5, region="us"))
        assert [h.chunk.chunk_id for h in hits] == ["refunds#0"]
        assert filled.document_hashes()["refunds"] == "h2"

    def test_document_hashes_flag_a_half_rewritten_document(self, filled: VectorStore) -> None:
        filled.upsert([chunk("refunds", 0, "us", "Annual plans are refundable for 60 days now.", doc_hash="h2")])
        filled.publish()
        assert filled.document_hashes()["refunds"] == "", "mixed chunk versions must read as changed"

    def test_document_sources(self, filled: VectorStore) -> None:
        assert filled.document_sources() == {d: f"{d}.md" for d in ("refunds", "refunds-eu", "sso", "sync")}

    def test_begin_write_finds_nothing_to_repair_in_a_clean_store(self, filled: VectorStore) -> None:
        assert filled.begin_write() == 0
        assert filled.count() == len(TEXTS)

    def test_document_hashes_and_vectors_for_reuse(self, filled: VectorStore) -> None:
        assert filled.document_hashes() == {d: "h1" for d in ("refunds", "refunds-eu", "sso", "sync")}
        text = TEXTS[("sso", 0, "")]
        vectors = filled.vectors_for([sha256_text(text), "unknown"])
        assert list(vectors) == [sha256_text(text)]
        assert vectors[sha256_text(text)] == pytest.approx(EMB.embed([text])[0], abs=1e-6)

    def test_data_persists_across_instances(self, filled: VectorStore, make_store: Callable[[], VectorStore]) -> None:
        again = make_store()
        again.ensure(EMB.name, EMB.dimension)
        assert again.count() == len(TEXTS)

    def test_refuses_another_embedder(self, filled: VectorStore, make_store: Callable[[], VectorStore]) -> None:
        other = make_store()
        with pytest.raises(StoreError, match="built with embedder"):
            other.ensure("minilm:all-MiniLM-L6-v2", 384)

    def test_text_analysis_stems_and_a_change_rebuilds_the_text_index(
        self, filled: VectorStore, make_store: Callable[..., VectorStore]
    ) -> None:
        """The default analysis (English: stemming, stop words) finds 'refunded' for 'refunding'; a store opened
        with other analysis settings refuses BM25 until the next ingest (begin_write ... publish) rebuilt the text
        index, and then follows them (never a mix of tokenisations)."""
        stemmed = filled.search(req(SearchMode.bm25, "refunding", k=5))
        assert {h.chunk.doc_id for h in stemmed} == {"refunds"}
        plain = make_store(analysis=TextAnalysis(stem=False, stop_words=False))
        plain.ensure(EMB.name, EMB.dimension)
        with pytest.raises(StoreError, match="text_analysis"):
            plain.search(req(SearchMode.bm25, "refunding", k=5))
        plain.begin_write()
        plain.upsert(corpus())  # what an ingest writes (OpenSearch re-indexes into a new index)
        plain.publish()
        assert plain.search(req(SearchMode.bm25, "refunding", k=5)) == []
        assert {h.chunk.doc_id for h in plain.search(req(SearchMode.bm25, "refunded", k=5))} == {"refunds"}
        again = make_store(analysis=TextAnalysis(stem=False, stop_words=False))
        again.ensure(EMB.name, EMB.dimension)
        assert [h.chunk.doc_id for h in again.search(req(SearchMode.bm25, "refunded", k=1))] == ["refunds"]

    def test_rebuild_then_publish_replaces_everything(self, filled: VectorStore) -> None:
        before = filled.name
        assert before.split(":")[0] in ("lancedb", "opensearch")
        filled.rebuild()
        filled.upsert([chunk("fresh", 0, "eu", "A single fresh document about invoices.")])
        filled.publish()
        assert filled.count() == 1
        assert [h.chunk.doc_id for h in filled.search(req(SearchMode.bm25, "invoices"))] == ["fresh"]
        assert filled.name != before


class VectorSearchContract:
    """The vector-search capability: every search test of `StoreContract` runs in BM25, vector and hybrid mode.
    Listed before `StoreContract` in the bases, so its `mode` fixture and `modes` win."""

    modes: tuple[SearchMode, ...] = tuple(SearchMode)

    @pytest.fixture(params=list(SearchMode), ids=str)
    def mode(self, request: pytest.FixtureRequest) -> SearchMode:
        return SearchMode(request.param)

"""Contract suite for the Embedder seam: subclasses provide the `embedder` fixture."""

from __future__ import annotations

import math

from ragharness.retrieval.embedders import Embedder, cosine


class EmbedderContract:
    def test_is_an_embedder(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert embedder.name and embedder.dimension > 0 and embedder.max_input_tokens > 0

    def test_vectors_have_the_dimension_and_unit_length(self, embedder: Embedder) -> None:
        vectors = embedder.embed(["refund within 30 days", "reset your password"])
        assert len(vectors) == 2
        for v in vectors:
            assert len(v) == embedder.dimension
            assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-3)

    def test_empty_batch(self, embedder: Embedder) -> None:
        assert embedder.embed([]) == []

    def test_deterministic_and_order_preserving(self, embedder: Embedder) -> None:
        a = embedder.embed(["alpha storage plan", "beta refund policy"])
        b = embedder.embed(["beta refund policy", "alpha storage plan"])
        assert cosine(a[0], b[1]) > 0.999 and cosine(a[1], b[0]) > 0.999

    def test_similar_texts_are_closer(self, embedder: Embedder) -> None:
        q, near, far = embedder.embed(
            [
                "how do I get a refund for my plan",
                "refunds for annual plans are paid within 30 days",
                "the desktop client crashes on launch",
            ]
        )
        assert cosine(q, near) > cosine(q, far)

    def test_count_tokens_grows_with_text(self, embedder: Embedder) -> None:
        assert 0 < embedder.count_tokens("refund") <= embedder.count_tokens("refund policy for annual plans")

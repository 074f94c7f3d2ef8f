from __future__ import annotations

import pytest

from ragharness.core.errors import ConfigError
from ragharness.core.types import Document
from ragharness.ingest.chunking import Chunker, embedding_input
from ragharness.retrieval.embedders import HashingEmbedder


def doc(text: str, kind: str = "markdown", title: str = "Guide") -> Document:
    return Document(
        doc_id="d",
        source="d.md",
        source_type=kind,
        title=title,
        text=text,  # type: ignore[arg-type]
        content_hash="h",
    )


def test_chunks_respect_the_embedder_limit_including_title() -> None:
    emb = HashingEmbedder()
    text = "\n\n".join(f"Paragraph {i} " + " ".join(f"word{i}x{j}" for j in range(40)) for i in range(12))
    chunks = Chunker(emb, chunk_size=50, chunk_overlap=10).split(doc(text))
    assert len(chunks) > 10
    for c in chunks:
        assert emb.count_tokens(embedding_input(c)) <= 50
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert [c.chunk_id for c in chunks][:2] == ["d#0", "d#1"]


def test_markdown_headers_give_sections_and_are_kept_in_text() -> None:
    text = "# Refunds\n\nIntro text here.\n\n## EU customers\n\nFourteen days to withdraw.\n"
    chunks = Chunker(HashingEmbedder(), chunk_size=200).split(doc(text))
    assert [c.section for c in chunks] == ["Refunds", "Refunds > EU customers"]
    assert chunks[1].text.startswith("## EU customers")


def test_chunk_size_above_the_embedder_limit_is_a_config_error() -> None:
    emb = HashingEmbedder()
    with pytest.raises(ConfigError, match=r"chunk_size: 600 tokens exceeds the embedder hashing:64 input limit"):
        Chunker(emb, chunk_size=600)
    with pytest.raises(ConfigError, match="chunk_overlap"):
        Chunker(emb, chunk_size=40, chunk_overlap=40)


def test_default_chunk_size_is_the_embedder_limit() -> None:
    assert Chunker(HashingEmbedder()).size == HashingEmbedder.max_input_tokens


def test_identical_text_identical_hash_and_signature_in_doc_hash() -> None:
    emb = HashingEmbedder()
    a = Chunker(emb, chunk_size=100).split(doc("Same words here."))
    b = Chunker(emb, chunk_size=100).split(doc("Same words here."))
    c = Chunker(emb, chunk_size=90).split(doc("Same words here."))
    assert a[0].content_hash == b[0].content_hash == c[0].content_hash
    assert a[0].doc_hash == b[0].doc_hash != c[0].doc_hash

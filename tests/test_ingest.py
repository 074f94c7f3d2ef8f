from __future__ import annotations

from pathlib import Path

from conftest import CountingEmbedder, write
from ragharness.ingest.pipeline import ingest
from ragharness.pipeline.components import build_redactor, build_store
from ragharness.pipeline.config import load_config


def run_ingest(project: Path, embedder: CountingEmbedder):  # type: ignore[no-untyped-def]
    cfg = load_config(project / "harness.yaml")
    return ingest(cfg.ingest_settings(), embedder, build_store(cfg), redactor=build_redactor(cfg))


def test_first_ingest_then_nothing_changed(mini_project: Path, embedder: CountingEmbedder) -> None:
    first = run_ingest(mini_project, embedder)
    assert first.documents_seen == 4 and first.documents_new == 4 and first.skipped == []
    assert first.chunks_written == first.chunks_embedded == first.chunks_total > 0
    embedder.embedded.clear()
    again = run_ingest(mini_project, embedder)
    assert again.documents_unchanged == 4 and again.chunks_written == 0 and again.chunks_deleted == 0
    assert embedder.embedded == []
    assert again.chunks_total == first.chunks_total


def test_changed_document_embeds_only_new_text(mini_project: Path, embedder: CountingEmbedder) -> None:
    run_ingest(mini_project, embedder)
    f = mini_project / "corpus/a/refunds.md"
    f.write_text(f.read_text() + "\n## Refund timing\n\nRefunds arrive within 5 business days.\n")
    embedder.embedded.clear()
    report = run_ingest(mini_project, embedder)
    assert report.documents_changed == 1 and report.documents_unchanged == 3
    assert report.chunks_embedded == 1 and report.chunks_reused >= 1
    assert len(embedder.embedded) == 1 and "5 business days" in embedder.embedded[0]


def test_removed_document_is_deleted(mini_project: Path, embedder: CountingEmbedder) -> None:
    first = run_ingest(mini_project, embedder)
    (mini_project / "corpus/b/contact.txt").unlink()
    report = run_ingest(mini_project, embedder)
    assert report.documents_removed == 1 and report.chunks_deleted >= 1
    assert report.chunks_total == first.chunks_total - report.chunks_deleted
    assert "b/contact" not in report.document_ids


def test_corrupt_file_is_skipped_and_its_previous_version_kept(mini_project: Path, embedder: CountingEmbedder) -> None:
    first = run_ingest(mini_project, embedder)
    write(mini_project / "corpus/a/limits.md", b"\xff\xfe\x00\x00garbage")
    write(mini_project / "corpus/a/new.md", "# New\n\nA new document about invoices.\n")
    report = run_ingest(mini_project, embedder)
    assert [s.source for s in report.skipped] == ["a/limits.md"]
    assert "binary file" in report.skipped[0].reason
    assert report.documents_new == 1 and report.documents_removed == 0
    assert "a/limits" in report.document_ids
    assert report.chunks_total == first.chunks_total + 1


def test_changing_chunking_rechunks_everything(mini_project: Path, embedder: CountingEmbedder) -> None:
    run_ingest(mini_project, embedder)
    f = mini_project / "harness.yaml"
    f.write_text(f.read_text().replace("chunk_size: 60", "chunk_size: 50"))
    report = run_ingest(mini_project, embedder)
    assert report.documents_changed == 4

from __future__ import annotations

from pathlib import Path

from ragharness.core.types import Metadata
from ragharness.ingest.loaders import SourceRef, load_file
from ragharness.ingest.settings import CorpusConfig, PathRule, TicketFormat


def load(path: str, data: bytes, sidecar: bytes | None = None, **cfg: object) -> tuple[list, list]:
    corpus = CorpusConfig(path=".", **cfg)  # type: ignore[arg-type]
    return load_file(SourceRef(path, len(data)), data, corpus, sidecar)


def test_markdown_front_matter_becomes_metadata_and_id() -> None:
    docs, skipped = load(
        "vault/a.md",
        b"---\nid: custom-id\ntitle: T\nproduct: vault\nregion: eu\ntags: [x, y]\n---\n# Heading\n\nBody text.\n",
    )
    assert skipped == []
    (doc,) = docs
    assert doc.doc_id == "custom-id" and doc.title == "T" and doc.source_type == "markdown"
    assert doc.metadata == Metadata(product="vault", region="eu", tags=("x", "y"))
    assert doc.text == "# Heading\n\nBody text."


def test_markdown_without_front_matter_uses_path_and_heading() -> None:
    (doc,), _ = load("docs/guide.md", b"# Guide title\n\nText.")
    assert doc.doc_id == "docs/guide" and doc.title == "Guide title"


def test_html_drops_boilerplate_and_keeps_tables() -> None:
    html = b"""<html><head><title>Limits</title><meta name="product" content="relay"><script>var secret=1</script>
    <style>.x{}</style></head><body><nav>Menu Home</nav><header>Site header</header><main><h1>Rate limits</h1>
    <table><tr><th>Plan</th><th>RPS</th></tr><tr><td>Pro</td><td>10</td></tr></table></main>
    <footer>Copyright</footer></body></html>"""
    (doc,), _ = load("relay/limits.html", html)
    assert doc.title == "Limits" and doc.metadata.product == "relay"
    assert "| Plan | RPS |" in doc.text and "| Pro | 10 |" in doc.text
    for junk in ("secret", "Menu", "Site header", "Copyright", ".x{}"):
        assert junk not in doc.text


def test_tickets_one_document_per_line_bad_lines_skipped_with_reason() -> None:
    data = (
        b'{"id": "T1", "subject": "Locked", "body": "Account locked", "product": "vault"}\n'
        b"{not json}\n"
        b'{"subject": "no id", "body": "x"}\n'
        b'{"id": "T4", "subject": "", "body": ""}\n'
        b'{"id": "T5", "subject": "Ok", "body": "Fine", "product": "relay"}\n'
    )
    docs, skipped = load("tickets/export.jsonl", data, tickets=TicketFormat(metadata_fields={"product": "product"}))
    assert [d.doc_id for d in docs] == ["tickets/export/T1", "tickets/export/T5"]
    assert docs[0].metadata.product == "vault" and docs[0].text == "Locked\n\nAccount locked"
    reasons = {s.source: s.reason for s in skipped}
    assert reasons["tickets/export.jsonl:2"].startswith("not valid JSON")
    assert "missing id field 'id'" in reasons["tickets/export.jsonl:3"]
    assert "none of the text fields" in reasons["tickets/export.jsonl:4"]


def test_bad_files_are_skipped_with_reasons() -> None:
    cases = {
        "bin.txt": (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary file"),
        "latin1.txt": ("caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8 text"),
        "empty.md": (b"   \n\n  ", "empty after cleaning"),
        "broken.md": (b"---\ntitle: [unclosed\n---\nbody", "front matter is not valid YAML"),
    }
    for name, (data, reason) in cases.items():
        docs, skipped = load(name, data)
        assert docs == [] and len(skipped) == 1, name
        assert skipped[0].source == name and reason in skipped[0].reason, (name, skipped)


def test_oversized_file_is_skipped() -> None:
    docs, skipped = load("big.txt", b"x" * 101, max_file_bytes=100)
    assert docs == [] and "oversized: 101 bytes > corpus.max_file_bytes 100" in skipped[0].reason


def test_metadata_precedence_rules_then_sidecar_then_front_matter() -> None:
    rules = [PathRule(match="vault/**", metadata=Metadata(product="vault", owner="team", plan="free"))]
    docs, _ = load(
        "vault/x.md",
        b"---\nplan: pro\n---\nText here.",
        sidecar=b"owner: sidecar-owner\nregion: us\n",
        rules=rules,
    )
    assert docs[0].metadata == Metadata(product="vault", owner="sidecar-owner", plan="pro", region="us")


def test_content_hash_changes_with_text_and_metadata() -> None:
    (a,), _ = load("a.md", b"---\nregion: us\n---\nSame text.")
    (b,), _ = load("a.md", b"---\nregion: eu\n---\nSame text.")
    (c,), _ = load("a.md", b"---\nregion: us\n---\nSame text.")
    assert a.content_hash != b.content_hash and a.content_hash == c.content_hash


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    (doc,), _ = load("w.txt", "\ufeffLine one\r\nLine two   \r\n\r\n\r\n\r\nLine three".encode())
    assert doc.text == "Line one\nLine two\n\nLine three"

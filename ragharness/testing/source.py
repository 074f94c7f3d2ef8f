"""The corpus source contract: the local folder and an S3 prefix answer the same calls the same way."""

from __future__ import annotations

from collections.abc import Callable

from ragharness.ingest.loaders import CorpusSource, Skipped, SourceRef

FILES: dict[str, bytes] = {
    "guides/refunds.md": b"---\ntitle: Refunds\n---\n# Refunds\n\nAnnual plans: 30 days.\n",
    "guides/refunds.md.meta.yaml": b"product: alpha\n",
    "guides/deep/limits.txt": b"The free plan includes 5 GB.\n",
    "tickets.jsonl": b'{"id": "T1", "subject": "Locked", "body": "Unlocks after 15 minutes."}\n',
    "notes/draft.md": b"# Draft\n\nnot for the index\n",
    "image.png": b"\x89PNG....",
}
INCLUDE = ["**/*.md", "**/*.txt", "**/*.jsonl"]
EXCLUDE = ["**/*.meta.yaml", "notes/**"]


def check_corpus_source(make: Callable[[dict[str, bytes], list[str], list[str]], CorpusSource]) -> None:
    """`make(files, include, exclude)` builds a source holding `files` (corpus-relative path -> bytes)."""
    source = make(FILES, INCLUDE, EXCLUDE)
    refs = [r for r in source.files() if not isinstance(r, Skipped)]
    assert sorted(r.path for r in refs) == ["guides/deep/limits.txt", "guides/refunds.md", "tickets.jsonl"]
    by_path = {r.path: r for r in refs}
    for path, ref in by_path.items():
        assert ref.size == len(FILES[path]), path
        assert source.read(ref, 10_000) == FILES[path], path
    md = by_path["guides/refunds.md"]
    assert source.read(md, 5) == FILES[md.path][:6], "a read stops at limit + 1 bytes"
    assert source.sidecar(md) == FILES["guides/refunds.md.meta.yaml"]
    assert source.sidecar(by_path["tickets.jsonl"]) is None
    missing = SourceRef("gone.md", 3)
    try:
        source.read(missing, 100)
    except OSError:
        pass
    else:
        raise AssertionError("reading a file that is gone raises OSError (recorded as a skipped file)")

"""Fault suite, the store: two ingests at once, SIGKILL between writing and deleting and during a rebuild, and
documents that break after they were ingested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write
from faultkit import cli, project
from ragharness.core.locking import exclusive
from ragharness.core.types import SearchMode
from ragharness.pipeline.components import open_store
from ragharness.pipeline.config import load_config
from ragharness.retrieval.embedders import HashingEmbedder
from ragharness.retrieval.store import SearchRequest, VectorStore

pytestmark = pytest.mark.faults


def _store(cfg_file: Path) -> VectorStore:
    cfg = load_config(cfg_file)
    return open_store(cfg, HashingEmbedder(64))


def _rows(store: VectorStore) -> list[str]:
    table = store._r()  # type: ignore[attr-defined]  # LanceDB: every row the readers see
    return list(table.search().select(["chunk_id"]).limit(None).to_arrow().column("chunk_id").to_pylist())


def _big_corpus(root: Path, docs: int) -> None:
    for i in range(docs):
        body = " ".join(f"Section {j} of page {i} explains setting {i * j} for plan {j}." for j in range(12))
        write(root / f"corpus/page{i:04d}.md", f"# Page {i}\n\n{body}\n")


def test_two_concurrent_ingests_leave_no_duplicate_chunk(tmp_path: Path) -> None:
    cfg = project(tmp_path, docs=0)
    _big_corpus(tmp_path, 600)
    cmd = [sys.executable, "-m", "ragharness", "ingest", str(cfg)]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 6]), (codes, outs)
    if codes == [0, 6]:
        loser = next(err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode == 6)
        assert "another ingest holds the lock (pid" in loser
    ids = _rows(_store(cfg))
    assert len(ids) == len(set(ids)) > 600
    hits = _store(cfg).search(SearchRequest(mode=SearchMode.bm25, k=10, text="page 17 setting"))
    assert len({h.chunk.chunk_id for h in hits}) == len(hits)


def test_ingest_while_another_holds_the_lock_exits_6_naming_the_holder(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    with exclusive(tmp_path / "data/ingest.lock", "test holder", who="another ingest"):
        res = cli("ingest", str(cfg), cwd=tmp_path)
    assert res.returncode == 6 and "another ingest holds the lock" in res.stderr
    assert "pid" in res.stderr and "test holder" in res.stderr
    assert cli("ingest", str(cfg), cwd=tmp_path).returncode == 0, "a released lock is free at once"


def _change_every_doc(root: Path) -> None:
    for f in sorted((root / "corpus").glob("*.md")):
        f.write_text(f.read_text() + "\nUpdated: this page now also covers invoices.\n")


def test_sigkill_between_write_and_delete_never_shows_a_partial_corpus(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert cli("ingest", str(cfg), cwd=tmp_path).returncode == 0
    before = sorted(_rows(_store(cfg)))
    published = _store(cfg).name
    _change_every_doc(tmp_path)
    killed = cli("ingest", str(cfg), cwd=tmp_path, kill_at="ingest:between-upsert-and-delete")
    assert killed.returncode == -9
    assert sorted(_rows(_store(cfg))) == before, "readers must keep seeing the last complete version"
    run = cli("run", str(cfg), "--no-ingest", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    packs = [json.loads(line) for line in (tmp_path / "run/context_packs.jsonl").read_text().splitlines()]
    assert {p["store"] for p in packs} == {published}, "packs record the version actually searched"
    assert all("invoices" not in p2["text"] for p in packs for p2 in p["passages"])
    again = cli("ingest", str(cfg), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    ids = _rows(_store(cfg))
    assert len(ids) == len(set(ids)) and sorted(ids) == before
    hits = _store(cfg).search(SearchRequest(mode=SearchMode.bm25, k=10, text="invoices"))
    assert {h.chunk.doc_id for h in hits} == {f"doc{i}" for i in range(6)}


def test_sigkill_during_rebuild_keeps_every_chunk(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert cli("ingest", str(cfg), cwd=tmp_path).returncode == 0
    before = sorted(_rows(_store(cfg)))
    killed = cli("ingest", str(cfg), "--rebuild", cwd=tmp_path, kill_at="ingest:before-publish")
    assert killed.returncode == -9
    assert sorted(_rows(_store(cfg))) == before
    assert cli("ingest", str(cfg), "--rebuild", cwd=tmp_path).returncode == 0
    assert sorted(_rows(_store(cfg))) == before


def test_an_unreadable_document_keeps_its_previous_version(tmp_path: Path) -> None:
    cfg = project(tmp_path, docs=2)
    write(
        tmp_path / "corpus/faq.md", "---\nid: faq-main\ntitle: FAQ\n---\n# FAQ\n\nThe zebracanary plan costs 9 EUR.\n"
    )
    write(
        tmp_path / "corpus/tickets.jsonl",
        '{"id": "T1", "subject": "Locked out", "body": "Unlock after 15 minutes of waiting."}\n'
        '{"id": "T2", "subject": "Refund", "body": "Refund the duplicate charge within 5 days."}\n',
    )
    assert cli("ingest", str(cfg), cwd=tmp_path).returncode == 0
    (tmp_path / "corpus/faq.md").write_bytes(b"\xff\xfe\x00broken binary")
    write(
        tmp_path / "corpus/tickets.jsonl",
        '{"id": "T1", "subject": "Locked out", "body": "Unlock after 15 minutes of waiting."}\n'
        '{"id": "T2", "subject": "Refund", "body": "Refund the dupl\n',
    )
    res = cli("ingest", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    docs = {h.chunk.doc_id for h in _store(cfg).search(SearchRequest(mode=SearchMode.bm25, k=10, text="zebracanary"))}
    assert docs == {"faq-main"}, "a broken file keeps the version from its front-matter id"
    hits = _store(cfg).search(SearchRequest(mode=SearchMode.bm25, k=10, text="duplicate charge"))
    assert "tickets/T2" in {h.chunk.doc_id for h in hits}, "one broken ticket line does not delete that ticket"
    report = json.loads((tmp_path / "data/ingest-report.json").read_text())
    assert report["documents_removed"] == 0
    assert {s["source"] for s in report["skipped"]} >= {"faq.md", "tickets.jsonl:2"}

"""Fault suite, hostile and broken input: documents built to break loaders, oversized files, links leaving the
corpus, and configuration mistakes that must fail before any model call."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import write
from faultkit import calls, cli, project
from ragharness.ingest import loaders
from ragharness.ingest.pipeline import load_corpus
from ragharness.pipeline.config import load_config

pytestmark = pytest.mark.faults


def test_a_document_that_makes_its_loader_raise_is_skipped_and_the_rest_ingested(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    write(tmp_path / "corpus/deep.html", "<div>" * 3000 + "deep" + "</div>" * 3000)
    res = cli("ingest", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "data/ingest-report.json").read_text())
    skipped = {s["source"]: s["reason"] for s in report["skipped"]}
    assert "RecursionError" in skipped["deep.html"]
    assert report["documents_seen"] == 6 and report["chunks_total"] >= 6


def test_size_limit_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = project(tmp_path)
    text = cfg_file.read_text().replace("corpus: {path: corpus}", "corpus: {path: corpus, max_file_bytes: 100000}")
    cfg_file.write_text(text)
    big = tmp_path / "corpus/huge.txt"
    with big.open("wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # 200 MB, sparse: reading it would cost the memory
    read: list[str] = []
    real = loaders.LocalSource.read

    def spy(self: loaders.LocalSource, ref: loaders.SourceRef, limit: int) -> bytes:
        read.append(ref.path)
        return real(self, ref, limit)

    monkeypatch.setattr(loaders.LocalSource, "read", spy)
    docs, skipped, _ = load_corpus(load_config(cfg_file).ingest_settings())
    assert "huge.txt" not in read and len(docs) == 6
    assert any(s.source == "huge.txt" and "oversized" in s.reason for s in skipped)


def test_links_leaving_the_corpus_are_not_followed(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    secret = write(tmp_path / "outside/secret.md", "# Secret\n\nThe launch code is zebra-4471.\n")
    write(tmp_path / "outside/meta.yaml", "region: eu\nowner: mallory\n")
    os.symlink(secret, tmp_path / "corpus/leak.md")
    os.symlink(tmp_path / "outside", tmp_path / "corpus/linked-folder")
    write(tmp_path / "corpus/inner.md", "# Inner\n\nInner page about quotas.\n")
    os.symlink(tmp_path / "outside/meta.yaml", tmp_path / "corpus/inner.md.meta.yaml")
    res = cli("ingest", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "data/ingest-report.json").read_text())
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert "outside the corpus" in reasons["leak.md"]
    assert "not followed" in reasons["linked-folder/"]
    assert "sidecar" in reasons["inner.md"] and "not followed" in reasons["inner.md"]
    stored = b"".join(f.read_bytes() for f in (tmp_path / "data").rglob("*") if f.is_file())
    assert b"zebra-4471" not in stored and b"mallory" not in stored


BAD_CONFIGS = {
    "misspelt threshold metric": ("thresholds: [{metric: correctnes, min: 0.5}]", "thresholds[0].metric"),
    "unknown threshold candidate": (
        "thresholds: [{metric: correctness, min: 0.1, candidates: [m3]}]",
        "thresholds[0].candidates",
    ),
    "judge key not set": (
        "scorers: [correctness, judge]\njudge: {provider: 'openai:j', options: {api_key: '${NO_SUCH_JUDGE_KEY}'}}",
        "NO_SUCH_JUDGE_KEY",
    ),
    "unknown judge provider": ("scorers: [correctness, judge]\njudge: {provider: 'nosuch:model'}", "judge.provider"),
    "duplicate key": ("budget_usd: 5\nbudget_usd: 50", "duplicate key 'budget_usd'"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_config_mistakes_fail_before_any_model_call(tmp_path: Path, case: str) -> None:
    extra, expected = BAD_CONFIGS[case]
    cfg = project(tmp_path, latency=1, extra=extra)
    res = cli("run", str(cfg), cwd=tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    assert expected in res.stderr
    assert calls(tmp_path) == [], "no model may be called before the configuration is known to be good"
    assert not (tmp_path / "runs").exists()


def test_nightly_webhook_reference_must_resolve_before_the_run(tmp_path: Path) -> None:
    cfg = project(tmp_path, latency=1, extra="nightly: {webhook: '${NO_SUCH_HOOK}'}")
    res = cli("nightly", str(cfg), cwd=tmp_path)
    assert res.returncode == 3 and "NO_SUCH_HOOK" in res.stderr, res.stdout + res.stderr
    assert calls(tmp_path) == []


def test_duplicate_keys_in_gold_sets_and_front_matter_are_errors(tmp_path: Path) -> None:
    cfg = project(tmp_path, latency=1)
    gold = tmp_path / "gold.yaml"
    gold.write_text(gold.read_text().replace("name: faults", "name: faults\nname: again"))
    res = cli("goldset", "lint", str(gold), cwd=tmp_path)
    assert res.returncode == 3 and "duplicate key 'name'" in res.stderr + res.stdout
    write(tmp_path / "corpus/dup.md", "---\nregion: eu\nregion: us\n---\n# Dup\n\nText.\n")
    _, skipped, _ = load_corpus(load_config(cfg).ingest_settings())
    assert any(s.source == "dup.md" and "duplicate key 'region'" in s.reason for s in skipped)

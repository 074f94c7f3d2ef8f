"""The PII leak watch finds leaks and only leaks: personal data is watched (documentation's placeholder domains and
dictionary words are not), on token boundaries, in one normal form, and the values found by any ingest are kept
(salted digests, never raw) so every later run, incremental or not, watches them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from conftest import write
from ragharness.cli import app
from ragharness.guardrails.leaks import LeakWatch


def test_only_personal_data_is_watched_on_token_boundaries(tmp_path: Path) -> None:
    watch = LeakWatch()
    watch.add_found(
        [
            ("SECRET", "secret"),  # `password: secret` in a how-to: a word, not a credential
            ("EMAIL_ADDRESS", "john.doe@example.com"),  # a placeholder
            ("EMAIL_ADDRESS", "Jane@Acme.io"),
            ("PHONE_NUMBER", "+1 415 555 0188"),
            ("IP_ADDRESS", "192.168.1.20"),  # a private address in every router manual
            ("SECRET", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("URL", "https://acme.io"),  # not personal data
        ]
    )
    assert len(watch) == 4  # the address, the phone (with and without its country code), the token
    assert watch.hits("Keep your secret safe; the default password is secret.") == 0
    assert watch.hits("Write to john.doe@example.com or visit 192.168.1.20") == 0
    assert watch.hits("mail jane@acme.io today") == 1
    assert watch.hits("mail xjane@acme.io or jane@acme.iox") == 0  # another address
    assert watch.hits("mail ｊａｎｅ＠ａｃｍｅ．ｉｏ") == 1  # the same address in another form
    assert watch.hits("call 4155550188 or (415) 555-0188") == 1
    assert watch.hits("order 94155550188123 shipped") == 0  # a longer number is another number
    assert watch.hits("token ghp_abcdefghijklmnopqrstuvwxyz0123456789.") == 1


def test_found_values_are_kept_hashed_and_watched_by_the_next_process(tmp_path: Path) -> None:
    store = tmp_path / "pii-watch.json"
    first = LeakWatch(path=store)
    first.add_found([("EMAIL_ADDRESS", "jane@acme.io"), ("CREDIT_CARD", "4111 1111 1111 1111")])
    first.save()
    text = store.read_text()
    assert "jane" not in text and "4111" not in text
    second = LeakWatch(path=store)
    assert len(second) == 2 and second.hits("card 4111-1111-1111-1111, mail jane@acme.io") == 2
    other = LeakWatch(path=store)  # two writers: both values survive
    other.add_found([("EMAIL_ADDRESS", "bob@acme.io")])
    second.add_found([("EMAIL_ADDRESS", "eve@acme.io")])
    other.save()
    second.save()
    assert len(LeakWatch(path=store)) == 4


def _project(root: Path) -> Path:
    write(
        root / "harness.yaml",
        """
name: leaks
data_dir: data
output_dir: runs
corpus: {path: corpus}
embedder: {kind: hashing}
retrieval: {mode: bm25, k: 2}
goldset: gold.yaml
guardrails: {input: [{kind: pii}], output: [{kind: pii}]}
scorers: [correctness, refusal]
thresholds: [{metric: guardrail_pii_leaks, max: 0}]
candidates:
  - {name: bot, provider: replay, options: {file: answers.jsonl}}
""",
    )
    write(
        root / "corpus/tokens.md",
        "# API tokens\n\nKeep the token secret. Example: `password: secret`. Kill a stuck job with the attack "
        "flag; inject the header. Write to john.doe@example.com for help. Billing: jane.roe@acme-billing.io.\n",
    )
    items = [
        {
            "id": "tok",
            "question": "How do I keep my API token secret?",
            "intent": "tokens",
            "reference_answer": "Keep the token secret.",
            "expected_sources": ["tokens"],
        }
    ]
    write(root / "gold.yaml", yaml.safe_dump({"name": "leaks", "items": items}))
    write(root / "answers.jsonl", json.dumps({"item_id": "tok", "answer": "Keep the token secret [1]."}) + "\n")
    return root / "harness.yaml"


def _summary(root: Path) -> dict:  # type: ignore[type-arg]
    latest = sorted((root / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)[-1]
    return json.loads(latest.read_text())


def test_a_corpus_without_leaks_reports_zero_on_every_run_and_a_real_leak_is_caught(tmp_path: Path) -> None:
    cfg = _project(tmp_path)
    first = CliRunner().invoke(app, ["run", str(cfg)])
    assert first.exit_code == 0, first.output
    g = _summary(tmp_path)["guardrail"]
    assert g["pii_leaks"] == 0 and g["known_pii_values"] >= 1  # the billing address is watched; "secret" is not
    again = CliRunner().invoke(app, ["run", str(cfg)])  # incremental: nothing re-redacted in this process
    assert again.exit_code == 0, again.output
    g = _summary(tmp_path)["guardrail"]
    assert g["pii_leaks"] == 0 and g["known_pii_values"] >= 1, g
    # the answer repeats the watched address and no output guardrail stops it: a leak, found from the kept digests
    text = cfg.read_text().replace("output: [{kind: pii}]", "output: []")
    cfg.write_text(text)
    write(
        tmp_path / "answers.jsonl",
        json.dumps({"item_id": "tok", "answer": "Mail jane.roe@acme-billing.io [1]."}) + "\n",
    )
    leak = CliRunner().invoke(app, ["run", str(cfg), "--no-ingest"])
    assert leak.exit_code == 1, leak.output  # the gate guardrail_pii_leaks max 0 fails
    assert _summary(tmp_path)["guardrail"]["pii_leaks"] >= 1

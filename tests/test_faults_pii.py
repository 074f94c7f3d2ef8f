"""Fault suite, PII: a catalogue of personal data and credentials planted in every place a corpus, a gold set and
a model can put them (titles, headings, front matter, sidecars, ticket fields, body text, questions, reference
answers and the answers themselves), then every artefact the example leaves (run directory, store folder,
response cache, ingest report, stdout and stderr) is searched for every raw value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import write
from faultkit import cli

pytestmark = pytest.mark.faults

CANARY = "Zebracanary"  # not PII: must be found in the store, proving the search can see stored text
EMAILS = [
    "ops@northwind-traders.example",
    "jane@acme.internal",
    "bob@mail.corp",
    "it@printer.local",
    "jane.doe+billing@example.com",
]
OBFUSCATED = ["jane dot doe at acme dot com", "mark [at] contoso [dot] io"]
PHONES = ["+1 415 555 0134", "+44 20 7946 0958", "+49 30 901820", "+33 1 42 68 53 00", "(415) 555-0199"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
SSNS = ["536-22-8914", "SSN 536228915"]
SECRETS = [
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
]
IPS = ["203.0.113.45"]
ANSWERED = ["leak.person@corp.internal", "+49 30 901821"]  # what the fake model puts in its answers
CATALOGUE = EMAILS + OBFUSCATED + PHONES + CARDS + IBANS + SSNS + SECRETS + IPS


CONFIG = """
name: {name}
data_dir: data
output_dir: runs
corpus:
  path: corpus
  tickets: {{id_field: id, text_fields: [subject, body], title_field: subject, metadata_fields: {{owner: agent}}}}
chunking: {{chunk_size: {chunk_size}, chunk_overlap: 8}}
embedder: {{kind: hashing}}
retrieval: {{mode: hybrid, k: 4}}
goldset: gold.yaml
runner: {{max_attempts: 1}}
candidates:
  - name: recorded
    provider: replay
    options: {{file: answers.jsonl, cacheable: true}}
  - name: ext
    provider: extractive
"""


def _core(value: str) -> str:
    """The identifying part of a planted value (`SSN 536228915` -> `536228915`)."""
    return value.removeprefix("SSN ")


def _variants(value: str) -> set[str]:
    """The value as written and, for numbers, its digits alone (a normaliser must not bring it back)."""
    core = _core(value)
    out = {core}
    digits = re.sub(r"\D", "", core)
    if len(digits) >= 9 and not re.search(r"[A-Za-z]", core):
        out.add(digits)
    return out


def _project(root: Path) -> Path:
    e, p, c, i, s, k = EMAILS, PHONES, CARDS, IBANS, SSNS, SECRETS
    write(root / "harness.yaml", CONFIG.format(name="piicat", chunk_size=120))
    write(
        root / "corpus/billing.md",
        f"---\ntitle: Billing for {e[1]} ({p[1]})\nowner: {e[2]}\ntags: [{e[3]}]\n---\n"
        f"# Billing contacts {p[2]}\n\n## Escalation to {e[0]}\n\n"
        f"{CANARY} billing covers refunds. Card {c[0]} and {c[1]} were charged; IBAN {i[0]}. "
        f"Reach {OBFUSCATED[0]} or {OBFUSCATED[1]} or {e[4]}. SSN on file {s[0]}; {s[1]}. "
        f"Server {IPS[0]} logs key {k[0]} and aws_secret_access_key = {k[1]} and token {k[2]}.\n",
    )
    write(root / "corpus/notes.txt", f"{CANARY} notes: refunds for card {c[2]} go to IBAN {i[1]}.\n")
    write(root / "corpus/notes.txt.meta.yaml", yaml.safe_dump({"owner": e[3], "tags": [p[3]]}))
    write(
        root / "corpus/page.html",
        f"<html><head><title>Support {e[0]}</title><meta name='owner' content='{e[1]}'></head>"
        f"<body><main><h1>Call {p[4]}</h1><p>{CANARY} refunds page for {e[2]}.</p></main></body></html>",
    )
    write(
        root / "corpus/tickets.jsonl",
        json.dumps({"id": "T1", "subject": f"Refund for {e[4]} {p[0]}", "body": f"{CANARY} card {c[0]}", "agent": e[0]})
        + "\n",
    )
    gold = {
        "name": "piicat",
        "items": [
            {
                "id": "q1",
                "question": f"I am {e[1]}, phone {p[0]}: how do refunds for card {c[0]} work?",
                "intent": "billing",
                "reference_answer": f"Refunds go back to the card; contact {e[0]}.",
                "alternative_answers": [f"Write to {e[3]}"],
                "expected_sources": ["billing"],
            },
            {
                "id": "q2",
                "question": f"What does the {CANARY} billing page cover?",
                "intent": "billing",
                "reference_answer": "Refunds.",
                "expected_sources": ["billing"],
            },
        ],
    }
    write(root / "gold.yaml", yaml.safe_dump(gold))
    answer = f"Mail {ANSWERED[0]} or call {ANSWERED[1]}; card {c[1]} [1]."
    write(root / "answers.jsonl", "".join(json.dumps({"item_id": q, "answer": answer}) + "\n" for q in ("q1", "q2")))
    return root / "harness.yaml"


def test_no_detected_value_reaches_any_artefact(tmp_path: Path) -> None:
    cfg = _project(tmp_path)
    res = cli("run", str(cfg), "--out", str(tmp_path / "runs/r1"), cwd=tmp_path)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    again = cli("run", str(cfg), "--out", str(tmp_path / "runs/r2"), "--cache", cwd=tmp_path)  # from the cache
    assert again.returncode in (0, 1), again.stdout + again.stderr
    blobs = {
        str(f.relative_to(tmp_path)): f.read_bytes()
        for folder in ("runs", "data")
        for f in (tmp_path / folder).rglob("*")
        if f.is_file()
    }
    blobs["stdout+stderr"] = (res.stdout + res.stderr + again.stdout + again.stderr).encode()
    assert any(CANARY.encode() in b for name, b in blobs.items() if name.startswith("data/") and ".lance" in name), (
        "the store's files must show plain text, or this search could not find a leak"
    )
    r2 = [json.loads(line) for line in (tmp_path / "runs/r2/generations.jsonl").read_text().splitlines()]
    assert all(g["cached"] for g in r2 if g["candidate"] == "recorded"), "the second run is served from the cache"
    leaks = [
        (variant, name)
        for value in [*CATALOGUE, *ANSWERED]
        for variant in _variants(value)
        for name, blob in blobs.items()
        if variant.encode() in blob
    ]
    assert leaks == [], leaks[:10]
    packs = (tmp_path / "runs/r1/context_packs.jsonl").read_text()
    for placeholder in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "SECRET", "IP_ADDRESS"):
        assert f"[REDACTED_{placeholder}]" in packs + (tmp_path / "runs/r1/goldset.json").read_text(), placeholder


FILE_EMAIL = "jane.doe@acme.io"  # in a file name
TICKET_EMAIL = "jane.roe@acme.io"  # a ticket id


def _hidden_project(root: Path) -> Path:
    from pii_catalogue import HIDDEN

    forms = list(HIDDEN)
    write(root / "harness.yaml", CONFIG.format(name="hidden", chunk_size=400))
    body = " ".join(f"{CANARY} note {n}: {form} [1]." for n, form in enumerate(forms))
    front = f"---\ntitle: Contact {forms[1]}\nowner: {forms[7]}\ntags: [{forms[4]}]\n---\n"
    write(root / f"corpus/contact-{FILE_EMAIL}.md", f"{front}# Reach {forms[2]}\n\n{body}\n")
    write(root / "corpus/plain.txt", f"{CANARY} refunds page. " + " ".join(forms[8:]) + "\n")
    write(root / "corpus/plain.txt.meta.yaml", yaml.safe_dump({"owner": forms[3], "tags": [forms[9]]}))
    ticket = {
        "id": TICKET_EMAIL,
        "subject": f"Refund {forms[0]}",
        "body": f"{CANARY} " + " ".join(forms),
        "agent": forms[5],
    }
    write(root / "corpus/tickets.jsonl", json.dumps(ticket) + "\n")
    gold = {
        "name": "hidden",
        "items": [
            {
                "id": f"q{n}",
                "question": f"My details are {form}; how do {CANARY} refunds work?",
                "intent": "billing",
                "reference_answer": f"Refunds go back to the card; contact {forms[(n + 1) % len(forms)]}.",
                "expected_sources": ["plain"],
            }
            for n, form in enumerate(forms)
        ],
    }
    write(root / "gold.yaml", yaml.safe_dump(gold, allow_unicode=True))
    answers = "".join(
        json.dumps({"item_id": f"q{n}", "answer": f"Refunds take 5 days [1]. {form} [1]."}) + "\n"
        for n, form in enumerate(forms)
    )
    write(root / "answers.jsonl", answers)
    return root / "harness.yaml"


@pytest.mark.security
def test_no_hidden_form_reaches_any_artefact_in_any_placement(tmp_path: Path) -> None:
    """Every form of tests/pii_catalogue.py in every placement (file name, ticket id, title, front matter, sidecar,
    heading, body, ticket fields, question, reference answer, answer with a citation marker): none of the values, in
    their normal form or as digits, is in any file of the run, the store, the response cache or the output."""
    from pii_catalogue import HIDDEN

    cfg = _hidden_project(tmp_path)
    res = cli("run", str(cfg), "--out", str(tmp_path / "runs/r1"), cwd=tmp_path)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    blobs = {
        str(f.relative_to(tmp_path)): f.read_bytes()
        for folder in ("runs", "data")
        for f in (tmp_path / folder).rglob("*")
        if f.is_file()
    }
    blobs["stdout+stderr"] = (res.stdout + res.stderr).encode()
    assert any(CANARY.encode() in b for name, b in blobs.items() if ".lance" in name), "the store must be searchable"
    needles = {FILE_EMAIL, TICKET_EMAIL}
    for planted, values in HIDDEN.items():
        needles.add(planted)
        for value in values:
            needles.add(value)
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 9:
                needles.add(digits)
    found: dict[str, list[str]] = {}
    for name, blob in blobs.items():
        text = blob.decode("utf-8", errors="replace").casefold()
        flat = re.sub(r"\D", "", text)
        for needle in needles:
            n = needle.casefold()
            if n in text or (n.isdigit() and n in flat and len(n) >= 12):
                found.setdefault(needle, []).append(name)
    assert found == {}, {k: v[:3] for k, v in found.items()}
    packs = (tmp_path / "runs/r1/context_packs.jsonl").read_text()
    assert "pii-" in (tmp_path / "runs/r1/ingest.json").read_text() + packs  # the file name's id: a pseudonym

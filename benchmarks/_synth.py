"""Benchmark helpers: a private copy of a project, and synthetic support-like corpora (deterministic by seed)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

WORDS = (
    "refund",
    "plan",
    "storage",
    "invoice",
    "account",
    "password",
    "region",
    "billing",
    "upgrade",
    "downgrade",
    "limit",
    "quota",
    "sync",
    "error",
    "client",
    "desktop",
    "mobile",
    "export",
    "import",
    "webhook",
    "signature",
    "retry",
    "timeout",
    "payout",
    "currency",
    "dispute",
    "evidence",
    "policy",
    "privacy",
    "retention",
    "deletion",
    "backup",
    "version",
    "history",
    "share",
    "link",
    "expiry",
    "admin",
    "member",
    "role",
    "team",
    "enterprise",
    "business",
    "pro",
    "free",
    "monthly",
    "annual",
    "days",
    "hours",
    "support",
    "response",
    "channel",
    "phone",
    "email",
    "chat",
)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_ticket_corpus(root: Path, n_docs: int, words_per_doc: int = 45, seed: int = 0) -> Path:
    """One JSONL ticket export with n_docs short documents (one chunk each with default chunking)."""
    rng = random.Random(seed)
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    with (corpus / "tickets.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_docs):
            body = " ".join(sentence(rng, 9) for _ in range(max(1, words_per_doc // 9)))
            fh.write(
                json.dumps(
                    {
                        "id": f"T{i}",
                        "subject": sentence(rng, 4),
                        "body": body,
                        "product": rng.choice(["vault", "relay", "ledger"]),
                    }
                )
                + "\n"
            )
    (root / "gold.yaml").write_text(
        "name: bench\nitems:\n  - {id: q1, question: refund, intent: x, "
        "expected_sources: [corpus/tickets/T0], tags: [retrieval-only]}\n"
    )
    (root / "harness.yaml").write_text(
        "name: bench\ndata_dir: data\noutput_dir: runs\n"
        "corpus: {path: corpus, max_file_bytes: 2000000000, tickets: {id_field: id, text_fields: [subject, body], "
        "metadata_fields: {product: product}}}\n"
        "goldset: gold.yaml\ncandidates: [{name: e, provider: extractive}]\n"
    )
    return root / "harness.yaml"


def portable_copy(config: Path, tmp: Path) -> Path:
    """Copy a project (config + corpus + gold set) into tmp, pointing its data and output folders there too."""
    dest = tmp / "project"
    shutil.copytree(config.parent, dest, ignore=shutil.ignore_patterns("runs", ".ragharness", "data"))
    cfg = dest / config.name
    text = cfg.read_text()
    for old in ("../../.ragharness/support", "../../runs"):
        text = text.replace(old, str(tmp / "out"))
    cfg.write_text(text.replace("data_dir: data", f"data_dir: {tmp / 'data'}"))
    return cfg

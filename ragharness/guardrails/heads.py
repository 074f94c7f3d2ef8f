"""Small trained classifier heads on the shipped MiniLM sentence embeddings: the local prompt-attack and
unsafe-request detectors.

A head is a logistic regression over the 384-dimensional normalised embedding of a window of text (long texts are
cut into overlapping windows of words; a text scores as its highest-scoring window, so an instruction hidden in
the middle of a long document is not averaged away). The context head also sees how far each window lies from the
text's mean window ("window+offset"): an injected instruction is out of place in the document around it.

The weights are a small JSON file in `weights/`, checked against `weights/SHA256SUMS` when loaded;
`training/guardrails/train.py` rebuilds them from the data in `training/guardrails/data/` with one command
(`make train-guardrails`), and `training/guardrails/PROVENANCE.md` says where that data comes from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.errors import ConfigError
from ragharness.retrieval.embedders import Embedder

WEIGHTS_DIR = Path(__file__).parent / "weights"
HEADS = ("prompt_attack_input", "prompt_attack_context", "unsafe_request")


class Head(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    embedder: str = Field(description="The embedder the head was trained on; no other embedder's vectors fit it.")
    window_words: int = Field(gt=0)
    window_stride: int = Field(gt=0)
    features: Literal["window", "window+offset"] = "window"
    weights: tuple[float, ...]
    bias: float
    threshold: float = Field(gt=0, lt=1, description="Probability at or above which the detector fires.")
    provenance: dict[str, str | int | float] = Field(default_factory=dict)

    def probabilities(self, vectors: Sequence[Sequence[float]]) -> list[float]:
        """One probability per window of one text."""
        x = np.asarray(vectors, dtype=np.float64)
        if self.features == "window+offset":
            x = np.hstack([x, x - x.mean(axis=0, keepdims=True)])
        z = x @ np.asarray(self.weights) + self.bias
        return [float(v) for v in 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_sums(directory: Path = WEIGHTS_DIR) -> dict[str, str]:
    sums: dict[str, str] = {}
    listing = directory / "SHA256SUMS"
    if listing.is_file():
        for line in listing.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.strip().partition("  ")
            if digest and name:
                sums[name] = digest
    return sums


@lru_cache(maxsize=8)
def load_head(name: str, directory: Path = WEIGHTS_DIR) -> Head:
    """The shipped head, after checking its file against the recorded sha256 (a changed file is refused)."""
    path = directory / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"{path}: detector weights missing; rebuild them with `make train-guardrails`")
    expected = recorded_sums(directory).get(path.name)
    actual = sha256_file(path)
    if expected != actual:
        raise ConfigError(
            f"{path}: sha256 {actual} does not match {directory / 'SHA256SUMS'} ({expected or 'no entry'}); "
            "the weights were changed outside `make train-guardrails`"
        )
    return Head.model_validate(json.loads(path.read_text(encoding="utf-8")))


def windows(text: str, size: int, stride: int) -> list[str]:
    """Overlapping windows of `size` words, `stride` apart; the last window reaches the end of the text."""
    words = text.split()
    if len(words) <= size:
        return [" ".join(words)]
    out = []
    start = 0
    while True:
        out.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            return out
        start += stride


class HeadDetector:
    """Scores texts with one head: the highest window probability of each text."""

    def __init__(self, head: Head, embedder: Embedder) -> None:
        if embedder.name != head.embedder:
            raise ConfigError(
                f"the {head.name} detector was trained on {head.embedder} embeddings; the configured embedder is "
                f"{embedder.name}. Use embedder kind minilm, or the bedrock guardrail backend"
            )
        self.head = head
        self.embedder = embedder

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        spans: list[tuple[int, int]] = []
        flat: list[str] = []
        for text in texts:
            parts = windows(text, self.head.window_words, self.head.window_stride)
            spans.append((len(flat), len(flat) + len(parts)))
            flat.extend(parts)
        vectors = self.embedder.embed(flat) if flat else []
        return [max(self.head.probabilities(vectors[a:b])) if b > a else 0.0 for a, b in spans]

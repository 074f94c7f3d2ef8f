"""Prices, cost of a call, cost estimates before a call, and the run budget."""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path

from ragharness.core.types import Price, Usage
from ragharness.core.yamlio import load_strict

_REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")
DEFAULT_OUTPUT_TOKENS = 512


@lru_cache(maxsize=1)
def shipped_prices() -> dict[str, Price]:
    data = load_strict((Path(__file__).parent / "prices.yaml").read_text(encoding="utf-8"))
    return {k: Price.model_validate(v) for k, v in data["prices"].items()}


def model_key(provider_id: str) -> str:
    """'bedrock:us.anthropic.claude-...' -> 'anthropic.claude-...'; 'openai:gpt-4o' -> 'gpt-4o'."""
    model = provider_id.split(":", 1)[1] if ":" in provider_id and not provider_id.startswith("mock") else provider_id
    for prefix in _REGION_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


class PriceTable:
    def __init__(self, overrides: dict[str, Price] | None = None, batch_discount: float = 0.5) -> None:
        self.prices = {**shipped_prices(), **(overrides or {})}
        self.batch_discount = batch_discount

    def price(self, provider_id: str) -> Price | None:
        return self.prices.get(model_key(provider_id)) or self.prices.get(provider_id.split(":", 1)[0])

    def cost(self, provider_id: str, usage: Usage, *, batch: bool = False) -> float | None:
        """USD for this usage, or None when the model has no price (reported, never silently free). Batch calls
        cost the listed batch price, else `batch_discount` times the online price (about half for both providers)."""
        p = self.price(provider_id)
        if p is None:
            return None
        cin, cout = p.input_per_1k, p.output_per_1k
        if batch:
            cin = p.batch_input_per_1k if p.batch_input_per_1k is not None else cin * self.batch_discount
            cout = p.batch_output_per_1k if p.batch_output_per_1k is not None else cout * self.batch_discount
        return usage.input_tokens / 1000 * cin + usage.output_tokens / 1000 * cout


def estimate_usage(system: str, user: str, max_tokens: object) -> Usage:
    """Pre-call estimate: ~4 characters a token in, `max_tokens` (else 512) out: an upper-bound-ish guess."""
    out = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else DEFAULT_OUTPUT_TOKENS
    return Usage(input_tokens=math.ceil((len(system) + len(user)) / 4), output_tokens=out)


class Budget:
    """A spend limit shared by all calls of a run: a call starts only if its estimate fits what is left."""

    def __init__(self, limit_usd: float | None, spent_usd: float = 0.0) -> None:
        self.limit = limit_usd
        self.spent = spent_usd
        self.reserved = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def reserve(self, estimate: float) -> bool:
        with self._lock:
            if self.limit is not None and self.spent + self.reserved + estimate > self.limit:
                self.refused += 1
                return False
            self.reserved += estimate
            return True

    def commit(self, estimate: float) -> None:
        """Count money already committed (a batch job that exists) without the right to refuse it."""
        with self._lock:
            self.reserved += estimate

    def settle(self, estimate: float, actual: float) -> None:
        with self._lock:
            self.reserved -= estimate
            self.spent += actual

    @property
    def exhausted(self) -> bool:
        return self.refused > 0

"""The one retry policy of the harness: model calls (the runner), guardrail calls and batch control calls all wait
the same way between attempts, full-jitter exponential backoff with a server's retry-after as a floor."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    """Attempts, backoff and the per-call timeout. `runner:` in harness.yaml is one (with the response cache)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(6, ge=1, le=50)
    base_delay_s: float = Field(1.0, ge=0, description="First backoff ceiling; doubles each retry (full jitter).")
    max_delay_s: float = Field(60.0, ge=0)
    timeout_s: float = Field(120.0, gt=0, description="Per-call timeout.")

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`: uniform in [0, min(max_delay_s, base_delay_s x 2^(attempt
        - 1))]; a server's retry-after is a floor."""
        backoff = (rng or random).uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        return max(backoff, retry_after or 0.0)

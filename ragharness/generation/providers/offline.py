"""Offline providers: `extractive` (an honest baseline), `replay` (recorded answers), `mock` (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.errors import ProviderError
from ragharness.core.text import content_words, sentences, stem
from ragharness.core.types import Candidate, Usage
from ragharness.generation.providers.base import (
    GenerationRequest,
    ProviderCallError,
    ProviderContext,
    ProviderResponse,
    parse_options,
)


class _Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtractiveOptions(_Opts):
    max_sentences: int = Field(2, gt=0)
    min_overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the question's content words a sentence must contain to be used.",
    )
    refusal: str = "I can't answer that from the available documentation."


class ExtractiveProvider:
    """Picks the passage sentences that share most content words with the question and cites them.

    Refuses when no sentence reaches `min_overlap`. No model: a floor every real candidate should beat.
    """

    def __init__(self, candidate: Candidate, ctx: ProviderContext) -> None:
        self.opts = parse_options(ExtractiveOptions, candidate)
        self.id = "extractive"
        self.cacheable = False

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        q = {stem(w) for w in content_words(request.question)}
        scored: list[tuple[float, int, int, str]] = []
        for p in request.passages:
            for i, sent in enumerate(sentences(p.text)):
                if sent.lstrip().startswith(("#", "|")):
                    continue
                s = {stem(w) for w in content_words(sent)}
                if not q or not s:
                    continue
                overlap = len(q & s) / len(q)
                scored.append((overlap, -p.number, -i, f"{sent.rstrip()} [{p.number}]"))
        scored.sort(reverse=True)
        best = [s for s in scored[: self.opts.max_sentences] if s[0] >= self.opts.min_overlap]
        text = " ".join(s[3] for s in best) if best else self.opts.refusal
        n_in = len(request.system.split()) + len(request.user.split())
        return ProviderResponse(
            text=text, usage=Usage(input_tokens=n_in, output_tokens=len(text.split())), model="extractive"
        )


class ReplayOptions(_Opts):
    file: str = Field(description="JSONL with one {item_id, answer[, usage, latency_ms]} record per line.")
    cacheable: bool = Field(False, description="Let the response cache serve this replay (cache tests).")


class ReplayRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    item_id: str
    answer: str
    usage: Usage = Usage()
    latency_ms: float | None = None
    model: str = ""


class ReplayProvider:
    """Answers recorded elsewhere (transcripts of any system), keyed by gold item id."""

    def __init__(self, candidate: Candidate, ctx: ProviderContext) -> None:
        opts = parse_options(ReplayOptions, candidate)
        path = Path(opts.file)
        path = path if path.is_absolute() else ctx.base_dir / path
        if not path.is_file():
            raise ProviderError(f"candidate {candidate.name!r}: replay file {path} not found (options.file)")
        self.records: dict[str, ReplayRecord] = {}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = ReplayRecord.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValueError) as exc:
                raise ProviderError(f"{path}:{n}: invalid replay record: {str(exc).splitlines()[0]}") from exc
            self.records[rec.item_id] = rec
        self.id = f"replay:{path.name}"
        self.cacheable = opts.cacheable

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        rec = self.records.get(request.item_id)
        if rec is None:
            raise ProviderCallError("fatal", "ReplayMissing", f"no recorded answer for item {request.item_id!r}")
        return ProviderResponse(
            text=rec.answer, usage=rec.usage, model=rec.model or "replay", latency_ms=rec.latency_ms
        )


class MockOptions(_Opts):
    latency_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1, description="Share of calls failing with a fatal error.")
    throttle_rate: float = Field(0.0, ge=0, le=1, description="Share of calls rejected with a rate-limit error.")
    seed: int = 0
    answer: str = Field("{first_sentence} [1]", description="Template: {first_sentence}, {question}.")
    call_log: str | None = Field(None, description="Append one JSON line per call here (fault tests).")
    cacheable: bool = Field(False, description="Let the response cache serve this fake (cache tests).")
    input_tokens: int | None = Field(None, ge=0, description="Fixed input tokens per call (default: word count).")
    output_tokens: int | None = Field(None, ge=0, description="Fixed output tokens per call (default: word count).")


class MockProvider:
    """Deterministic fake model: configurable latency, fatal errors and throttling, seeded per call."""

    def __init__(self, candidate: Candidate, ctx: ProviderContext) -> None:
        self.opts = parse_options(MockOptions, candidate)
        self.id = f"mock:{candidate.name}"
        self.cacheable = self.opts.cacheable
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        log = self.opts.call_log
        self._log = (Path(log) if Path(log).is_absolute() else ctx.base_dir / log) if log else None

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        with self._lock:
            attempt = self._attempts.get(request.item_id, 0)
            self._attempts[request.item_id] = attempt + 1
        if self._log is not None:
            with self._log.open("a", encoding="utf-8") as fh:
                fh.write(
                    json.dumps({"item_id": request.item_id, "candidate": request.candidate.name, "attempt": attempt})
                    + "\n"
                )
        rng = random.Random(f"{self.opts.seed}:{request.candidate.name}:{request.item_id}:{attempt}")
        if self.opts.latency_ms:
            await asyncio.sleep(self.opts.latency_ms / 1000)
        roll = rng.random()
        if roll < self.opts.throttle_rate:
            raise ProviderCallError("rate_limit", "ThrottlingException", "mock throttled the call", retry_after=0.0)
        # Fatal errors are decided per item (not per attempt) so a retry cannot hide them.
        if random.Random(f"{self.opts.seed}:{request.item_id}:fatal").random() < self.opts.error_rate:
            raise ProviderCallError("fatal", "MockError", "mock failed the call")
        first = (
            sentences(request.passages[0].text)[0] if request.passages and sentences(request.passages[0].text) else ""
        )
        text = self.opts.answer.format(first_sentence=first or "No passages.", question=request.question)
        usage = Usage(
            input_tokens=self.opts.input_tokens if self.opts.input_tokens is not None else len(request.user.split()),
            output_tokens=self.opts.output_tokens if self.opts.output_tokens is not None else len(text.split()),
        )
        return ProviderResponse(text=text, usage=usage, model="mock")

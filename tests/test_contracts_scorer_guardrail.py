"""The shipped contract suites (ragharness.testing) run by every built-in scorer, guardrail and run store."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fake_runs import make_run
from moto import mock_aws

from ragharness.core.registry import GUARDRAILS, SCORERS
from ragharness.core.types import Usage
from ragharness.generation.models import ModelPool
from ragharness.generation.providers.base import GenerationRequest, ProviderResponse
from ragharness.generation.runner import RateLimits
from ragharness.guardrails.base import Guardrail, GuardrailContext
from ragharness.pipeline.config import HarnessConfig
from ragharness.retrieval.embedders import HashingEmbedder
from ragharness.runs.rundir import RunDir
from ragharness.runs.store import LocalRunStore, RunStore, S3RunStore
from ragharness.scoring.base import Scorer, ScorerContext
from ragharness.testing.guardrail import GuardrailContract
from ragharness.testing.runstore import RunStoreContract
from ragharness.testing.scorer import ScorerContract


class ScriptedJudge:
    """A judge model that reads the prompt and answers valid judge-claims JSON (v1 or v2), deterministically."""

    id = "scripted-judge"
    cacheable = False

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        answer = request.user.split("<answer>")[1].split("</answer>")[0].strip()
        refusal = "can't" in answer
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
        out: dict[str, Any] = {
            "claims": []
            if refusal
            else [{"text": s, "verdict": "supported", "supporting_passages": [1]} for s in sentences],
            "correctness": {"label": "correct" if "10" in answer else "incorrect", "reason": "scripted"},
            "is_refusal": refusal,
        }
        if "reference_statements" in request.system:
            out["passages"] = [
                {"number": p.number, "relevant": p.number == 1, "needed": p.number == 1} for p in request.passages
            ]
            must_refuse = "(this question must be refused)" in request.user
            out["reference_statements"] = (
                [] if must_refuse else [{"text": "10 business days", "supporting_passages": [1]}]
            )
        return ProviderResponse(text=json.dumps(out), usage=Usage(input_tokens=10, output_tokens=10), latency_ms=1.0)


def scorer_context(tmp: Path) -> ScorerContext:
    cfg = HarnessConfig.model_validate(
        {
            "name": "t",
            "data_dir": str(tmp / "data"),
            "corpus": {"path": "corpus"},
            "goldset": "gold.yaml",
            "candidates": [{"name": "c", "provider": "extractive"}],
            "judge": {"provider": "mock"},
            "runner": {"cache": False},
            "base_dir": tmp,
        }
    )
    return ScorerContext(
        embedder=HashingEmbedder(), judge=cfg.judge, models=ModelPool(cfg.call_settings(), cache="off")
    )


class TestBuiltinScorers(ScorerContract):
    @pytest.fixture(params=SCORERS.kinds())
    def scorer(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scorer]:
        ctx = scorer_context(tmp_path)
        built = SCORERS.create(request.param, ctx)
        if request.param == "judge":  # the judge's model: a scripted one instead of the configured mock
            assert ctx.models is not None
            ctx.models.providers["judge"] = ScriptedJudge()  # type: ignore[assignment]
            ctx.models.limits["judge"] = (2, RateLimits())
        yield built


GUARDRAIL_OPTIONS: dict[str, dict[str, Any]] = {"pii": {}, "deny_patterns": {"patterns": ["weather"]}}


class TestBuiltinGuardrails(GuardrailContract):
    @pytest.fixture(params=GUARDRAILS.kinds())
    def guardrail(self, request: pytest.FixtureRequest) -> Guardrail:
        return GUARDRAILS.create(request.param, GUARDRAIL_OPTIONS[request.param], GuardrailContext())


def _finished(folder: Path, run_id: str) -> RunDir:
    return make_run(folder, run_id, {"bot": [True, False, True]})


class TestLocalRunStore(RunStoreContract):
    @pytest.fixture
    def run_store(self, tmp_path: Path) -> RunStore:
        return LocalRunStore(tmp_path / "store")

    @pytest.fixture
    def finished_run(self) -> Any:
        return _finished


class TestS3RunStore(RunStoreContract):
    @pytest.fixture
    def run_store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunStore]:
        # S3 applies a conditional put atomically; moto checks the condition and then writes, unguarded, so two
        # threads can both pass the check (and one can close the other's body buffer). Serialising moto's key
        # requests gives the emulator the atomicity S3 documents; the store's own retry logic is what is tested.
        import moto.s3.responses

        lock = threading.Lock()
        handle = moto.s3.responses.S3Response.key_response

        def one_at_a_time(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return handle(self, *args, **kwargs)

        monkeypatch.setattr(moto.s3.responses.S3Response, "key_response", one_at_a_time)
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="evals")
            yield S3RunStore("evals", "ragharness/runs", tmp_path / "cache", client=s3)

    @pytest.fixture
    def finished_run(self) -> Any:
        return _finished

"""A plugin scorer with options of its own and a model of its own: its options are checked, its calls go through
the scorers' model pool (retries, limits, budget, leak watch), they are recorded and priced under its own name
beside the judge's, and its metric gates like a built-in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pydantic
import pytest
from typer.testing import CliRunner

from fake_openai import FakeOpenAI, Reply, completion, serve
from ragharness import plugins
from ragharness.cli import app
from ragharness.core.errors import ConfigError
from ragharness.core.types import PromptRef
from ragharness.generation.runner import RateLimits
from ragharness.pipeline.config import load_config
from ragharness.pipeline.dryrun import plan
from ragharness.pipeline.evaluation import execute_run


class ToneOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    provider: str = "mock"
    base_url: str | None = None
    mode: Literal["online", "batch", "auto"] = "online"
    pass_words: int = pydantic.Field(3, ge=1)


class Tone:
    """Asks its own model about each answer; 1 when the model's reply has at least `pass_words` words."""

    name = "tone"
    version = "1"
    level: Literal["answer"] = "answer"
    metrics = ("tone",)

    def __init__(self, ctx: plugins.ScorerContext) -> None:
        opts = ToneOptions(**ctx.options)
        assert ctx.models is not None
        self.models, self.pass_words = ctx.models, opts.pass_words
        self.model = plugins.Candidate(
            name="tone",
            provider=opts.provider,
            prompt=PromptRef(id="tone", version=1),
            options={"base_url": opts.base_url} if opts.base_url else {},
        )
        where = "harness.yaml: scorers (tone)"
        self.models.add("tone", self.model, concurrency=2, limits=RateLimits(), where=where, mode=opts.mode)

    def _request(self, inp: plugins.ScoringInput) -> plugins.GenerationRequest:
        text = inp.generation.text if inp.generation else ""
        return plugins.GenerationRequest(
            item_id=inp.item.id,
            candidate=self.model,
            system="Say whether this support answer is polite.",
            user=text,
            question=inp.item.question,
            passages=(),
            request_hash=hashlib.sha256(f"tone:{self.model.provider}:{inp.item.id}:{text}".encode()).hexdigest(),
        )

    def planned_requests(self, inp: plugins.ScoringInput) -> list[plugins.GenerationRequest]:
        """What it will send (priced by --dry-run, sent as batch jobs when its mode says so)."""
        return [self._request(inp)]

    async def score(self, inp: plugins.ScoringInput) -> list[plugins.Score]:
        reply = await self.models.call(self._request(inp))
        if reply is None or not reply.ok:
            return [plugins.make_score(self, inp, "tone", None, "error", "the tone model did not answer")]
        ok = len(reply.text.split()) >= self.pass_words
        return [plugins.make_score(self, inp, "tone", 1.0 if ok else 0.0, "ok" if ok else "terse", reply.text[:80])]


@pytest.fixture
def tone() -> Iterator[None]:
    plugins.SCORERS.register("tone", Tone, help="plugin: its own model rates each answer", options=ToneOptions)
    plugins.register_metric(plugins.MetricSpec(name="tone", family="answer", short="tone"))
    yield
    plugins.SCORERS.unregister("tone")


def _project(mini_project: Path, extra: str) -> Path:
    cfg_file = mini_project / "harness.yaml"
    cfg_file.write_text(cfg_file.read_text() + extra)
    return cfg_file


def test_a_plugins_model_is_called_priced_and_gated_under_its_own_name(mini_project: Path, tone: None) -> None:
    cfg_file = _project(
        mini_project,
        "scorers: [correctness, {tone: {pass_words: 1}}]\n"
        "prices: {mock: {input_per_1k: 1.0, output_per_1k: 2.0}}\n"
        "thresholds:\n  - {metric: tone, min: 0.5}\n",
    )
    run_dir = execute_run(load_config(cfg_file)).run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    use = summary["scorer_models"]
    assert list(use) == ["tone"] and use["tone"]["calls"] == 6 and use["tone"]["unpriced"] == 0  # 3 items x 2
    assert use["tone"]["cost_usd"] > 0 and summary["judge_cost_usd"] == pytest.approx(use["tone"]["cost_usd"])
    calls = [json.loads(x) for x in (run_dir / "judge_calls.jsonl").read_text().splitlines()]
    assert {c["candidate"] for c in calls} == {"tone"} and len(calls) == 6
    expected = sum(c["usage"]["input_tokens"] / 1000 * 1.0 + c["usage"]["output_tokens"] / 1000 * 2.0 for c in calls)
    assert use["tone"]["cost_usd"] == pytest.approx(expected, abs=1e-6)  # the price table's, not a guess
    gate = next(g for g in summary["gates"] if g["metric"] == "tone")
    assert all(c["metrics"]["tone"]["mean"] == 1.0 for c in summary["candidates"]) and gate["passed"]
    report = (run_dir / "report.html").read_text()
    assert 'class="scorer-model">tone (6 calls) $' in report


def test_an_unpriced_plugin_model_is_shown_unpriced_and_bad_options_name_the_entry(
    mini_project: Path, tone: None
) -> None:
    run_dir = execute_run(load_config(_project(mini_project, "scorers: [tone]\n"))).run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["scorer_models"]["tone"]["unpriced"] == 6
    assert (
        "tone (6 calls) $unpriced" in (run_dir / "report.html").read_text()
        or "tone (6 calls) unpriced" in (run_dir / "report.html").read_text()
    )
    bad = _project(mini_project, "")
    bad.write_text(bad.read_text().replace("scorers: [tone]", "scorers: [{tone: {pass_words: 0}}]"))
    with pytest.raises(ConfigError, match=r"scorers\[0\] \(tone\): options.pass_words: Input should be greater"):
        execute_run(load_config(bad))
    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 3 and "tone accepts options: provider, base_url, mode, pass_words" in res.output, res.output


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from serve()


def test_a_plugins_model_in_batch_mode_sends_its_calls_as_its_own_batch_job(
    mini_project: Path, tone: None, server: FakeOpenAI
) -> None:
    server.responder = lambda body: Reply(body=completion("Polite, clear and kind.", 100, 4))
    options = f'{{provider: "openai:tone-model", base_url: "{server.base_url}", mode: batch, pass_words: 2}}'
    cfg_file = _project(
        mini_project,
        f"scorers: [correctness, {{tone: {options}}}]\n"
        "prices: {tone-model: {input_per_1k: 1.0, output_per_1k: 2.0}}\n"
        "batch: {poll_interval_s: 0.01}\n",
    )
    dry = plan(load_config(cfg_file))
    assert dry.batch["tone (scorer)"].mode == "batch" and dry.batch["tone (scorer)"].jobs == 1
    run_dir = execute_run(load_config(cfg_file), use_cache=False).run_dir
    assert server.batch_api.creates == 1  # one job, for the tone model
    assert [r for r in server.requests if r["path"] == "/v1/chat/completions"] == [], "nothing went online"
    calls = [json.loads(x) for x in (run_dir / "judge_calls.jsonl").read_text().splitlines()]
    assert len(calls) == 6 and all(c["candidate"] == "tone" and c["mode"] == "batch" for c in calls)
    use = json.loads((run_dir / "summary.json").read_text())["scorer_models"]["tone"]
    assert use["calls"] == 6 and use["cost_usd"] == pytest.approx(6 * (100 * 1.0 + 4 * 2.0) / 1000 * 0.5)  # batch price
    rows = [json.loads(x) for x in (run_dir / "scores.jsonl").read_text().splitlines()]
    assert [r["value"] for r in rows if r["metric"] == "tone"] == [1.0] * 6


def test_a_plugin_model_in_batch_mode_without_a_batch_api_is_refused_before_any_call(
    mini_project: Path, tone: None
) -> None:
    cfg_file = _project(mini_project, "scorers: [{tone: {mode: batch}}]\n")
    with pytest.raises(ConfigError, match=r"scorers \(tone\)\.mode: 'batch', but 'mock:tone' has no batch API"):
        execute_run(load_config(cfg_file))

"""Plugins: a third-party scorer registered from this test module runs through exactly the path of the built-ins
(the shipped contract suite, a run, a re-score, `ragharness plugins`); registry errors name the culprit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from ragharness import plugins
from ragharness.cli import app
from ragharness.core import registry
from ragharness.core.errors import PluginError
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run
from ragharness.testing.scorer import ScorerContract


class AnswerLength:
    """A plugin's scorer: 1 when the answer is at most `max_words` words. Async, like a model-calling scorer."""

    name = "answer_length"
    version = "7"
    level: Literal["answer"] = "answer"
    metrics = ("brevity",)

    def __init__(self, ctx: plugins.ScorerContext) -> None:
        self.max_words = int(str(ctx.options.get("max_words", 25)))

    async def score(self, inp: plugins.ScoringInput) -> list[plugins.Score]:
        await asyncio.sleep(0)
        words = len((inp.generation.text if inp.generation else "").split())
        ok = words <= self.max_words
        return [
            plugins.make_score(self, inp, "brevity", 1.0 if ok else 0.0, "brief" if ok else "long", f"{words} words")
        ]


@pytest.fixture
def registered() -> Iterator[None]:
    plugins.SCORERS.register("answer_length", AnswerLength, help="plugin: 1 when the answer has at most 25 words")
    plugins.register_metric(plugins.MetricSpec(name="brevity", family="answer", short="brief", headline=True))
    yield
    plugins.SCORERS.unregister("answer_length")


class TestPluginScorerRunsTheShippedContract(ScorerContract):
    @pytest.fixture
    def scorer(self) -> plugins.Scorer:
        return AnswerLength(plugins.ScorerContext())


def test_plugin_scorer_runs_in_a_run_and_a_rescore_and_is_listed(mini_project: Path, registered: None) -> None:
    cfg_file = mini_project / "harness.yaml"
    cfg_file.write_text(cfg_file.read_text() + "scorers: [correctness, answer_length]\n")
    run_dir = execute_run(load_config(cfg_file), log=lambda s: None).run_dir
    scores = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    mine = [s for s in scores if s["scorer"] == "answer_length"]
    assert len(mine) == 6 and {s["metric"] for s in mine} == {"brevity"} and all(s["reason"] for s in mine)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all("brevity" in c["metrics"] for c in summary["candidates"])
    res = CliRunner().invoke(app, ["score", str(run_dir), "--scorers", "answer_length"])
    assert res.exit_code == 0, res.output
    assert "scored: answer_length@7: 6 records" in res.output and "brief" in res.output  # its column, by its spec
    listed = CliRunner().invoke(app, ["plugins"])
    assert "answer_length" in listed.output and "plugin: 1 when the answer has at most 25 words" in listed.output
    for builtin in ("judge", "assertions", "groundedness", "correctness", "citation", "refusal", "retrieval"):
        line = next(x for x in listed.output.splitlines() if x.strip().startswith(builtin))
        assert len(line.split(None, 1)) == 2, f"{builtin} has no description"


def test_a_duplicate_name_is_an_error_naming_both(registered: None) -> None:
    with pytest.raises(PluginError, match=r"scorer 'answer_length' is registered twice .*test_plugins\.AnswerLength"):
        plugins.SCORERS.register("answer_length", AnswerLength, help="again")
    with pytest.raises(PluginError, match="registered twice"):
        plugins.SCORERS.register("judge", AnswerLength, help="a plugin may not replace a built-in")


def test_a_plugin_without_a_description_is_refused() -> None:
    with pytest.raises(PluginError, match="help= description"):
        plugins.SCORERS.register("nameless", AnswerLength)


def test_a_plugin_that_fails_to_load_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint(name="acme-scorers", value="acme_missing_module:register", group="ragharness.plugins")
    builtins = EntryPoint(name="builtins", value="ragharness.pipeline.builtins:register", group="ragharness.plugins")
    monkeypatch.setattr(registry, "entry_points", lambda group: [broken, builtins])
    for reg in (
        registry.PROVIDERS,
        registry.EMBEDDERS,
        registry.STORES,
        registry.SCORERS,
        registry.GUARDRAILS,
        registry.GUARDRAIL_BACKENDS,
    ):
        monkeypatch.setattr(reg, "_entries", {})  # restored after the test
    monkeypatch.setattr(registry, "_loaded", False)
    with pytest.raises(PluginError, match=r"plugin 'acme-scorers' \(acme_missing_module:register.*failed to load"):
        registry.load_plugins()
    assert "extractive" in registry.PROVIDERS._entries, "the built-ins load first, whatever the entry point order"


def test_importing_ragharness_and_its_plugin_api_never_imports_pytest() -> None:
    import subprocess
    import sys

    code = "import sys, ragharness, ragharness.plugins, ragharness.cli; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class QuestionShort:
    """A plugin's item-level scorer (one score per gold item, shared by every candidate), its metric uncatalogued."""

    name = "question_short"
    version = "1"
    level: Literal["item"] = "item"
    metrics = ("question_brevity",)

    def __init__(self, ctx: plugins.ScorerContext) -> None:
        pass

    def score(self, inp: plugins.ScoringInput) -> list[plugins.Score]:
        return [plugins.make_score(self, inp, "question_brevity", 1.0, "short", "fewer than 40 words")]


def test_a_plugins_item_level_metric_is_gated_compared_and_reported_by_its_level(mini_project: Path) -> None:
    """Dispatch by the catalog's level, not a name prefix: before, `question_brevity` (item-level, no `retrieval_`
    prefix) was filed with the item scores but gated per candidate, so a 1.0 failed its gate with "no value"."""
    from ragharness.runs.summary import RunSummary, evaluate_gates
    from ragharness.scoring import metrics as catalog
    from ragharness.scoring.settings import Threshold

    plugins.SCORERS.register("question_short", QuestionShort, help="plugin: 1 when the question is short")
    try:
        cfg_file = mini_project / "harness.yaml"
        cfg_file.write_text(
            cfg_file.read_text()
            + "scorers: [correctness, question_short]\nthresholds:\n  - {metric: question_brevity, min: 0.9}\n"
        )
        run_dir = execute_run(load_config(cfg_file), log=lambda s: None).run_dir
        assert catalog.spec("question_brevity").level == "item"
        summary = RunSummary.model_validate_json((run_dir / "summary.json").read_text())
        assert summary.retrieval["question_brevity"].mean == 1.0
        [gate] = summary.gates
        assert gate.passed and gate.candidate == "(items)", gate.message
        assert summary.status != "fail"
        assert ">question_brevity</th>" in (run_dir / "report.html").read_text()
        # a process that never built the plugin (re-rendering, an old run) still finds it among the item scores
        catalog.unregister_metric("question_brevity")
        [again] = evaluate_gates(summary, [Threshold(metric="question_brevity", min=0.9)])
        assert again.passed and again.value == 1.0, again.message
        # the guardrail figures are run-level by their family
        assert catalog.spec("guardrail_pii_leaks").level == "run" and catalog.spec("retrieval_hit").level == "item"
    finally:
        plugins.SCORERS.unregister("question_short")
        catalog.unregister_metric("question_brevity")

"""Scorers are configured where they are listed: `scorers: [name | {name: {options}}]`. Each scorer's options are
checked against what it declares, apply to that scorer alone, and survive the run's stored config (a re-score
scores as the run did)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ragharness.cli import app
from ragharness.core.errors import ConfigError
from ragharness.pipeline.components import build_scorers
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run

STRICT = {"correct_recall_min": 1.0, "correct_similarity_min": 1.0, "partial_recall_min": 1.0}


def _config(project: Path, scorers: str) -> Path:
    cfg_file = project / "harness.yaml"
    text = cfg_file.read_text().split("\nscorers:")[0]
    cfg_file.write_text(text + f"\nscorers: {scorers}\n")
    return cfg_file


def _correctness(run_dir: Path) -> dict[tuple[str, str], str]:
    rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    return {(s["item_id"], s["candidate"]): s["label"] for s in rows if s["metric"] == "correctness"}


def test_a_scorers_options_change_its_verdicts_alone_and_survive_a_rescore(mini_project: Path) -> None:
    gold = mini_project / "gold.yaml"  # a reference that says a little more than any answer will
    gold.write_text(
        gold.read_text().replace(
            "reference_answer: Annual plans can be refunded within 30 days of purchase.",
            "reference_answer: Annual plans can be refunded within 30 days of purchase through the billing portal.",
        )
    )
    plain = execute_run(load_config(_config(mini_project, "[correctness, groundedness]"))).run_dir
    strict_cfg = _config(mini_project, f"[{{correctness: {json.dumps(STRICT)}}}, groundedness]")
    strict = execute_run(load_config(strict_cfg)).run_dir
    before, after = _correctness(plain), _correctness(strict)
    assert before.keys() == after.keys()
    assert sum(v == "correct" for v in before.values()) > sum(v == "correct" for v in after.values()), (before, after)
    assert before[("refund", "ext")] == "correct" and after[("refund", "ext")] != "correct", (before, after)
    ground = [json.loads(x) for x in (strict / "scores.jsonl").read_text().splitlines()]
    base = [json.loads(x) for x in (plain / "scores.jsonl").read_text().splitlines()]
    assert [s["value"] for s in ground if s["metric"] == "groundedness"] == [
        s["value"] for s in base if s["metric"] == "groundedness"
    ]  # the other scorer is untouched
    stored = yaml.safe_load((strict / "config.yaml").read_text())
    assert stored["scorers"] == [{"correctness": STRICT}, "groundedness"]  # written back as the user wrote it
    res = CliRunner().invoke(app, ["score", str(strict)])
    assert res.exit_code in (0, 1), res.output
    assert _correctness(strict) == after  # the latest records, scored with the stored options


@pytest.mark.parametrize(
    ("scorers", "expected"),
    [
        (
            "[{refusal: {strict: true}}]",
            "scorers[0] (refusal): options.strict: unknown option; refusal accepts options: none",
        ),
        (
            "[{correctness: {correct_recall_min: 2}}]",
            "scorers[0] (correctness): options.correct_recall_min: Input should be less than or equal to 1 (got 2)",
        ),
        (
            "[citation, {groundedness: {lexcal_min: 0.3}}]",
            "scorers[1] (groundedness): options.lexcal_min: unknown option; groundedness accepts options: lexical_min,",
        ),
    ],
)
def test_bad_scorer_options_are_errors_naming_the_entry_and_what_it_accepts(
    mini_project: Path, scorers: str, expected: str
) -> None:
    cfg = load_config(_config(mini_project, scorers))
    with pytest.raises(ConfigError) as err:
        build_scorers(cfg, None)
    assert expected in str(err.value) and str(mini_project / "harness.yaml") in str(err.value), str(err.value)


def test_the_judges_options_under_scorers_are_its_settings_checked_when_the_config_loads(mini_project: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(mini_project, "[{judge: {model: x}}]"))
    message = str(err.value)
    assert str(mini_project / "harness.yaml") in message
    assert (
        "scorers[0] (judge): provider: Field required; model: unknown key; the judge takes provider, prompt" in message
    )


def test_a_scorer_listed_twice_or_options_that_are_no_mapping_are_config_errors(mini_project: Path) -> None:
    with pytest.raises(ConfigError, match="repeated: correctness"):
        load_config(_config(mini_project, "[correctness, {correctness: {partial_recall_min: 0.2}}]"))
    with pytest.raises(ConfigError, match="options of scorer 'refusal' must be a mapping"):
        load_config(_config(mini_project, "[{refusal: 3}]"))


def test_the_judge_section_alone_turns_the_judge_on(mini_project: Path) -> None:
    cfg_file = _config(mini_project, "[correctness]")
    cfg_file.write_text(cfg_file.read_text() + "judge: {provider: mock}\n")
    cfg = load_config(cfg_file)
    assert cfg.scorer_names == ["correctness", "judge"]  # configured once, by its section
    assert [s.name.split(":")[0] for s in build_scorers(cfg, None)] == ["correctness", "judge"]
    listed = _config(mini_project, "[judge, correctness]")
    listed.write_text(listed.read_text() + "judge: {provider: mock}\n")
    assert load_config(listed).scorer_names == ["judge", "correctness"]  # listing it too stays allowed
    without = _config(mini_project, "[correctness]")
    assert load_config(without).scorer_names == ["correctness"]

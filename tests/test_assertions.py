"""Per-item assertions: each type passes and fails with a reason; gold set validation names file, item and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from ragharness.core.errors import GoldSetError
from ragharness.core.types import Assertion, Generation, GoldItem
from ragharness.goldset import load_goldset
from ragharness.scoring.assertions import AssertionScorer, check
from ragharness.scoring.base import ScorerContext, ScoringInput, run_scorer
from ragharness.testing.scorer import PACK

ASSERTION: TypeAdapter[Assertion] = TypeAdapter(Assertion)
ANSWER = "Refunds are paid within 10 business days [1]. Fees: $1,250.50 per year."


def _check(spec: dict[str, Any], text: str = ANSWER) -> tuple[bool, str]:
    item = GoldItem(id="q", question="?", intent="x", reference_answer="r", expected_sources=["r"])
    gen = Generation(item_id="q", candidate="c", text=text, citations=(1,) if "[1]" in text else ())
    return check(ASSERTION.validate_python(spec), ScoringInput(item=item, pack=PACK, generation=gen))


@pytest.mark.parametrize(
    ("spec", "holds", "reason"),
    [
        ({"type": "contains", "value": "BUSINESS days"}, True, "contains 'BUSINESS days'"),
        ({"type": "contains", "value": "BUSINESS days", "case_sensitive": True}, False, "does not contain"),
        ({"type": "not_contains", "value": "45 days"}, True, "does not contain '45 days'"),
        ({"type": "not_contains", "value": "10 business"}, False, "which it must not"),
        ({"type": "regex", "pattern": r"\b10 business days\b"}, True, "matches '10 business days'"),
        ({"type": "regex", "pattern": r"^Fees"}, False, "does not match"),
        ({"type": "must_cite", "source": "r"}, True, "cites r as [1]"),
        ({"type": "must_cite", "source": "s#0"}, False, "does not cite s#0 (passage [2])"),
        ({"type": "must_cite", "source": "elsewhere"}, False, "not among the retrieved passages"),
        ({"type": "max_words", "value": 12}, True, "12 words (at most 12)"),
        ({"type": "max_words", "value": 5}, False, "12 words (at most 5)"),
        ({"type": "equals_number", "value": 1250.5}, True, "states 1250.5"),
        ({"type": "equals_number", "value": 9, "tolerance": 1}, True, "states 10 (9 ± 1)"),
        ({"type": "equals_number", "value": 45}, False, "expected 45; the answer states 10, 1250.5"),
    ],
)
def test_each_assertion_holds_or_fails_with_its_reason(spec: dict[str, Any], holds: bool, reason: str) -> None:
    ok, why = _check(spec)
    assert ok is holds and reason in why, why


def test_json_schema_assertion() -> None:
    schema = {"type": "object", "required": ["days"], "properties": {"days": {"type": "integer", "maximum": 30}}}
    assert _check({"type": "json_schema", "json_schema": schema}, '```json\n{"days": 10}\n```') == (
        True,
        "JSON matches the schema",
    )
    ok, why = _check({"type": "json_schema", "json_schema": schema}, '{"days": 45}')
    assert not ok and "at days" in why and "45" in why
    ok, why = _check({"type": "json_schema", "json_schema": schema}, "ten days")
    assert not ok and why.startswith("not JSON")


def test_the_scorer_writes_one_record_per_assertion_and_the_share_that_hold() -> None:
    item = GoldItem.model_validate(
        {
            "id": "q",
            "question": "?",
            "intent": "x",
            "reference_answer": "r",
            "expected_sources": ["r"],
            "assertions": [
                {"type": "contains", "value": "10 business days"},
                {"type": "contains", "value": "refund window", "name": "mentions_window"},
                {"type": "must_cite", "source": "r"},
            ],
        }
    )
    gen = Generation(item_id="q", candidate="c", text=ANSWER, citations=(1,))
    scores = {
        s.metric: s
        for s in run_scorer(AssertionScorer(ScorerContext()), ScoringInput(item=item, pack=PACK, generation=gen))
    }
    assert set(scores) == {"assertions", "assert_contains", "assert_mentions_window", "assert_must_cite"}
    assert scores["assertions"].value == pytest.approx(2 / 3) and scores["assertions"].label == "fail"
    assert "assert_mentions_window: does not contain 'refund window'" in scores["assertions"].reason
    assert scores["assert_must_cite"].label == "pass" and scores["assert_mentions_window"].value == 0.0


def test_goldset_lint_names_file_item_and_field_of_bad_assertions(tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    gold.write_text(
        """
name: t
items:
  - id: a
    question: q?
    intent: x
    reference_answer: r
    expected_sources: [d]
    assertions:
      - {type: regex, pattern: "([unclosed"}
      - {type: contains, value: x}
      - {type: contains, value: y}
      - {type: json_schema, json_schema: {type: nonsense}}
      - {type: sounds_right}
      - {type: max_words, value: 0}
"""
    )
    with pytest.raises(GoldSetError) as err:
        load_goldset(gold)
    text = "\n".join(err.value.problems)
    assert f"{gold}: item 'a': field assertions[0].regex.pattern:" in text and "not a valid regular expression" in text
    assert "assertions[3].json_schema.json_schema:" in text and "not a valid JSON Schema" in text
    assert "assertions[4]:" in text and "sounds_right" in text
    assert "assertions[5].max_words.value: Input should be greater than 0 (got 0)" in text
    gold.write_text(gold.read_text().split("      - {type: json_schema")[0].replace('"([unclosed"', '"ok"'))
    with pytest.raises(GoldSetError) as err2:
        load_goldset(gold)
    (problem,) = err2.value.problems
    assert problem.startswith(f"{gold}: item 'a': field assertions[2]: a second 'assert_contains'")
    assert "give each a distinct `name`" in problem


def test_must_cite_sources_are_checked_against_the_corpus(tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    gold.write_text(
        "name: t\nitems:\n  - {id: a, question: 'q?', intent: x, reference_answer: r, expected_sources: [d],\n"
        "     assertions: [{type: must_cite, source: gone/doc}]}\n"
    )
    with pytest.raises(GoldSetError) as err:
        load_goldset(gold, known_sources={"d"})
    assert "field assertions[0].source: 'gone/doc' is not a document of the corpus" in err.value.problems[0]


def test_gates_may_name_a_per_assertion_metric(mini_project: Path) -> None:
    from typer.testing import CliRunner

    from ragharness.cli import app

    cfg = mini_project / "harness.yaml"
    base = cfg.read_text() + "scorers: [correctness, assertions]\n"
    cfg.write_text(base + "thresholds: [{metric: assert_contains, min: 0.5}, {metric: assertions, min: 0.5}]\n")
    assert CliRunner().invoke(app, ["run", str(cfg), "--dry-run"]).exit_code == 0
    cfg.write_text(base + "thresholds: [{metric: asserts, min: 0.5}]\n")
    res = CliRunner().invoke(app, ["run", str(cfg), "--dry-run"])
    assert res.exit_code == 3 and "thresholds[0].metric: 'asserts' is not produced" in res.output


def test_assertion_texts_are_redacted_before_they_reach_run_files_and_reports(mini_project: Path) -> None:
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.evaluation import execute_run

    gold = mini_project / "gold.yaml"
    gold.write_text(
        gold.read_text().replace(
            "    expected_sources: [a/refunds]\n",
            "    expected_sources: [a/refunds]\n    assertions: [{type: not_contains, value: jane.doe@example.com}]\n",
            1,
        )
    )
    cfg = mini_project / "harness.yaml"
    cfg.write_text(cfg.read_text() + "scorers: [correctness, assertions]\n")
    run_dir = execute_run(load_config(cfg), log=lambda s: None).run_dir
    for f in run_dir.rglob("*"):
        if f.is_file():
            assert "jane.doe@example.com" not in f.read_text(encoding="utf-8", errors="replace"), f.name
    assert "[REDACTED_EMAIL_ADDRESS]" in (run_dir / "goldset.json").read_text()

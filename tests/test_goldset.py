from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EXAMPLE, write
from ragharness.core.errors import GoldSetError
from ragharness.goldset import goldset_json_schema, load_goldset


def test_example_gold_set_meets_the_brief() -> None:
    gs = load_goldset(EXAMPLE / "gold.yaml")
    intents = {i.intent for i in gs.items}
    assert len(gs.items) >= 60 and len(intents) >= 6
    assert sum(1 for i in gs.items if not i.answerable) >= 6
    assert sum(1 for i in gs.items if i.filters) >= 10


def test_every_problem_is_reported_with_file_item_and_field(tmp_path: Path) -> None:
    f = write(
        tmp_path / "gold.yaml",
        """
name: broken
items:
  - id: ok-1
    question: fine?
    intent: x
    reference_answer: sure
    expected_sources: [doc]
  - id: no-question
    intent: x
    reference_answer: y
    expected_sources: [doc]
  - id: ok-1
    question: duplicate id
    intent: x
    reference_answer: y
    expected_sources: [doc]
  - id: bad-sources
    question: q
    intent: x
    reference_answer: y
    expected_sources: doc-a
  - id: no-reference
    question: q
    intent: x
    expected_sources: [doc]
  - id: bad-filter
    question: q
    intent: x
    reference_answer: y
    expected_sources: [doc]
    filters: {colour: red}
  - id: typo
    question: q
    intent: x
    reference_answer: y
    expected_sources: [doc]
    answerabel: false
""",
    )
    with pytest.raises(GoldSetError) as e:
        load_goldset(f)
    problems = "\n".join(e.value.problems)
    assert f"{f}: item 'no-question': field question: Field required" in problems
    assert f"{f}: item 'ok-1': field id: duplicate of item #1" in problems
    assert f"{f}: item 'bad-sources': field expected_sources: Input should be a valid list" in problems
    assert f"{f}: item 'no-reference': field reference_answer: required when answerable is true" in problems
    assert f"{f}: item 'bad-filter': field filters: unknown filter field(s) ['colour']" in problems
    assert f"{f}: item 'typo': field answerabel: unknown key" in problems
    assert len(e.value.problems) == 6


def test_jsonl_bad_line_is_named(tmp_path: Path) -> None:
    good = {"id": "a", "question": "q", "intent": "i", "reference_answer": "r", "expected_sources": ["d"]}
    f = write(tmp_path / "g.jsonl", json.dumps(good) + "\n{not json\n")
    with pytest.raises(GoldSetError) as e:
        load_goldset(f)
    assert e.value.problems == [
        f"{f}: line 2: not valid JSON (Expecting property name enclosed in double quotes); "
        "each line must be one item object"
    ]


def test_unknown_expected_sources_against_corpus(tmp_path: Path) -> None:
    good = {
        "id": "a",
        "question": "q",
        "intent": "i",
        "reference_answer": "r",
        "expected_sources": ["d#2", "zz"],
    }
    f = write(tmp_path / "g.jsonl", json.dumps(good) + "\n")
    with pytest.raises(GoldSetError, match="problem") as e:
        load_goldset(f, known_sources={"d"})
    assert "['zz'] not found in the ingested corpus" in e.value.problems[0]


def test_empty_and_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(GoldSetError, match="expected a mapping with `name` and an `items` list"):
        load_goldset(write(tmp_path / "a.yaml", "just text"))
    with pytest.raises(GoldSetError) as e:
        load_goldset(write(tmp_path / "b.yaml", "name: x\nitems: []\n"))
    assert "has no items" in e.value.problems[0]
    with pytest.raises(GoldSetError, match="not found"):
        load_goldset(tmp_path / "missing.yaml")


def test_schema_is_published() -> None:
    schema = goldset_json_schema()
    item = schema["$defs"]["GoldItem"]
    assert item["additionalProperties"] is False
    assert {"id", "question", "intent", "expected_sources", "answerable"} <= set(item["properties"])


def test_published_schema_file_is_current() -> None:
    published = json.loads((EXAMPLE.parent / "goldset.schema.json").read_text())
    assert published == goldset_json_schema(), (
        "regenerate: ragharness goldset schema --out goldsets/goldset.schema.json"
    )

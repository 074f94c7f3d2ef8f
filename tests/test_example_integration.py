"""Integration tier: the shipped example, real all-MiniLM-L6-v2 and real LanceDB, through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLE
from example_figures import GOLDEN, figures
from ragharness.cli import app
from ragharness.core.types import SearchMode
from ragharness.goldset import load_goldset
from ragharness.ingest.pipeline import ingest
from ragharness.pipeline.components import build_redactor, build_store, open_store
from ragharness.pipeline.config import load_config
from ragharness.retrieval.embedders import MiniLMEmbedder
from ragharness.retrieval.retriever import Retriever

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("example")
    dest = root / "support"
    shutil.copytree(EXAMPLE, dest)
    cfg = (dest / "harness.yaml").read_text()
    cfg = cfg.replace("../../.ragharness/support", str(root / "data")).replace("../../runs", str(root / "runs"))
    (dest / "harness.yaml").write_text(cfg)
    return dest


@pytest.fixture(scope="module")
def demo(project: Path) -> tuple[int, str, Path]:
    result = CliRunner().invoke(app, ["run", str(project / "harness.yaml")])
    run_dir = next((project.parent / "runs").iterdir())
    return result.exit_code, result.output, run_dir


def test_demo_passes_and_prints_summary_and_report(demo: tuple[int, str, Path]) -> None:
    code, output, run_dir = demo
    assert code == 0, output
    assert "support-demo · 78 items · PASS" in output
    assert "correctness per intent" in output
    assert f"report: {run_dir / 'report.html'}" in output
    assert "ingest: documents: 55 seen, 55 new" in output


def test_demo_scores_separate_the_candidates_sensibly(demo: tuple[int, str, Path]) -> None:
    summary = json.loads((demo[2] / "summary.json").read_text())
    c = {x["candidate"]: x["metrics"] for x in summary["candidates"]}
    ext, rep = c["extractive"], c["replay-assistant-v1"]
    # The replay transcript contains hallucinated numbers, uncited and invalid citations and missed refusals.
    assert rep["groundedness"]["mean"] < ext["groundedness"]["mean"]
    assert rep["citation_coverage"]["mean"] < ext["citation_coverage"]["mean"]
    assert rep["citation_validity"]["labels"].get("invalid", 0) == 3
    # the weather question's made-up answer is refused by the policy's contextual grounding (off-topic context)
    assert rep["refusal"]["labels"]["should_have_refused"] == 2
    assert rep["correctness"]["labels"].get("incorrect", 0) >= 7
    # ... but answers more questions correctly than the extractive floor.
    assert rep["correctness"]["mean"] > ext["correctness"]["mean"]
    assert summary["retrieval"]["retrieval_hit"]["mean"] >= 0.9
    assert summary["guardrails"].get("output:sensitive_information:EMAIL_ADDRESS", 0) >= 1  # the policy's redaction
    g = summary["guardrail"]  # the policy: expectations met, one over-block (a prompt-attack false positive), no leak
    assert (g["expectations_met"], g["expectations"], g["under_blocked"], g["over_blocked"]) == (11, 11, 0, 1)
    assert g["pii_leaks"] == 0 and g["known_pii_values"] >= 17
    assert 'id="guardrails"' in (demo[2] / "report.html").read_text()
    assert "[REDACTED_EMAIL_ADDRESS]" in (demo[2] / "context_packs.jsonl").read_text()  # redacted at ingest
    # the example gold set's assertions: scored per assertion, failures shown under the answer in the report
    assert rep["assertions"]["n_applicable"] == 14 and 0 < rep["assertions"]["mean"] < 1
    assert rep["assert_equals_number"]["n"] == 9
    assert 'class="score failed-assertion">assert_' in (demo[2] / "report.html").read_text()


def test_example_figures_equal_the_recorded_ones(demo: tuple[int, str, Path]) -> None:
    """Refactors (the move into rooms, the scoring seam) must not change a single figure of the example. A metric
    added later may appear beside them; every recorded one must be equal. Re-record deliberately with
    `python tests/example_figures.py RUN_DIR` when a scorer changes on purpose, and say why in the commit."""
    now, before = figures(demo[2] / "summary.json"), json.loads(GOLDEN.read_text())

    def recorded_only(new: object, old: object) -> object:
        if isinstance(new, dict) and isinstance(old, dict):
            return {k: recorded_only(new.get(k), v) for k, v in old.items()}
        return new

    assert recorded_only(now, before) == before


def test_ticket_pii_never_reaches_run_files(demo: tuple[int, str, Path]) -> None:
    for f in demo[2].iterdir():
        text = f.read_text(encoding="utf-8")
        for raw in (
            "jane.doe@example.com",
            "4111 1111 1111 1111",
            "DE89 3704 0044 0532 0130 00",
            "536-22-8914",
            "203.0.113.45",
            "+1 415 555 0134",
        ):
            assert raw not in text, (raw, f.name)


def test_reingest_with_nothing_changed_embeds_nothing(
    project: Path, demo: tuple[int, str, Path], minilm: MiniLMEmbedder
) -> None:
    cfg = load_config(project / "harness.yaml")
    report = ingest(cfg.ingest_settings(), minilm, build_store(cfg), redactor=build_redactor(cfg))
    assert report.documents_unchanged == 55 and report.chunks_embedded == 0 and report.chunks_written == 0


def test_metadata_filters_decide_region_specific_answers(
    project: Path, demo: tuple[int, str, Path], minilm: MiniLMEmbedder
) -> None:
    cfg = load_config(project / "harness.yaml")
    gold = {i.id: i for i in load_goldset(project / "gold.yaml").items}
    retriever = Retriever(minilm, open_store(cfg, minilm), mode=SearchMode.hybrid, k=3)
    us, eu = retriever.retrieve(gold["refund-us-annual"]), retriever.retrieve(gold["refund-eu-window"])
    assert us.question == eu.question
    assert {p.doc_id for p in us.passages} == {"vault/refund-policy-us"}
    assert eu.passages[0].doc_id == "vault/refund-policy-eu"
    assert all(p.metadata.region == "eu" for p in eu.passages)


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_mode_finds_the_expected_sources_for_most_items(
    project: Path, demo: tuple[int, str, Path], minilm: MiniLMEmbedder, mode: SearchMode
) -> None:
    cfg = load_config(project / "harness.yaml")
    retriever = Retriever(minilm, open_store(cfg, minilm), mode=mode, k=6)
    items = [i for i in load_goldset(project / "gold.yaml").items if i.expected_sources]
    hits = 0
    for item in items:
        pack = retriever.retrieve(item)
        found = {p.doc_id for p in pack.passages} | {p.chunk_id for p in pack.passages}
        hits += bool(found & set(item.expected_sources))
    assert hits / len(items) >= 0.85


def test_the_example_with_a_candidate_and_the_judge_in_batch_mode_scores_as_online(
    project: Path, demo: tuple[int, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped example, one OpenAI-compatible candidate and the judge in batch mode against the local fake
    Batch API, gives the same scores as online mode for the same responses."""
    import yaml
    from judge_kit import responder

    from fake_openai import FakeOpenAI
    from ragharness.pipeline.evaluation import execute_run

    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    base = yaml.safe_load((project / "harness.yaml").read_text())
    with FakeOpenAI() as server:
        server.responder = responder
        scores = {}
        for mode in ("batch", "online"):
            cfg = dict(base)
            options = {"base_url": server.base_url, "api_key": "${OPENAI_KEY}"}
            cfg["candidates"] = [{"name": "gpt", "provider": "openai:gpt-4o-mini", "mode": mode, "options": options}]
            cfg["judge"] = {"provider": "openai:judge-model", "mode": mode, "options": {"base_url": server.base_url}}
            cfg["scorers"] = [*base.get("scorers", ["citation", "groundedness", "correctness", "refusal"]), "judge"]
            cfg["thresholds"] = []
            cfg["batch"] = {"poll_interval_s": 0.01}
            path = project / f"batch-{mode}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            run_dir = execute_run(load_config(path), skip_ingest=True, log=lambda s: None, use_cache=False).run_dir
            rows = [json.loads(x) for x in (run_dir / "scores.jsonl").read_text().splitlines()]
            scores[mode] = sorted((s["item_id"], s["candidate"], s["metric"], s["value"], s["label"]) for s in rows)
            gens = [json.loads(x) for x in (run_dir / "generations.jsonl").read_text().splitlines()]
            called = [g for g in gens if g["guardrail_stage"] != "input"]
            assert called and all(g["mode"] == mode for g in called)
        assert server.batch_api.creates == 2  # the candidate's job and the judge's job
        assert scores["batch"] == scores["online"] and len(scores["batch"]) > 78 * 10

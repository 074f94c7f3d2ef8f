from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import pytrec_eval
from typer.testing import CliRunner

from conftest import write
from ragharness.analysis.retrieval import evaluate_retrieval
from ragharness.cli import app
from ragharness.core.errors import GoldSetError
from ragharness.core.types import SearchMode
from ragharness.goldset import load_goldset
from ragharness.ingest.pipeline import ingest
from ragharness.pipeline.components import build_redactor, open_store
from ragharness.pipeline.config import load_config
from ragharness.retrieval.beir import import_beir
from ragharness.retrieval.embedders import HashingEmbedder
from ragharness.retrieval.metrics import retrieval_metrics


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_pytrec_eval_on_generated_runs(seed: int) -> None:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(40):
        rel = rng.sample(docs, rng.randint(1, 6))
        qrels[f"q{q}"] = {d: 1 for d in rel}
        ranked = rng.sample(docs, 25)
        run[f"q{q}"] = {d: 100.0 - i for i, d in enumerate(ranked)}
    for k in (1, 3, 5, 10, 20):
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{k}", f"recall.{k}", f"success.{k}"})
        truncated = {q: dict(sorted(r.items(), key=lambda kv: -kv[1])[:k]) for q, r in run.items()}
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(truncated)
        reference = evaluator.evaluate(run)
        for q, ranking in run.items():
            ours = retrieval_metrics([(d, d) for d in sorted(ranking, key=lambda d: -ranking[d])], list(qrels[q]), k)
            assert ours.ndcg == pytest.approx(reference[q][f"ndcg_cut_{k}"], abs=1e-6)
            assert ours.recall == pytest.approx(reference[q][f"recall_{k}"], abs=1e-6)
            assert ours.hit == pytest.approx(reference[q][f"success_{k}"], abs=1e-6)
            assert ours.mrr == pytest.approx(rr[q]["recip_rank"], abs=1e-6)


def test_evaluate_retrieval_side_by_side(mini_project: Path) -> None:
    cfg = load_config(mini_project / "harness.yaml")
    emb = HashingEmbedder()
    store = open_store(cfg, emb)
    ingest(cfg.ingest_settings(), emb, store, redactor=build_redactor(cfg))
    items = load_goldset(mini_project / "gold.yaml").items
    result = evaluate_retrieval(items, emb, store, k=3)
    assert [m.mode for m in result.modes] == [SearchMode.vector, SearchMode.bm25, SearchMode.hybrid]
    for m in result.modes:
        assert m.n_items == 2 and set(m.by_intent) == {"billing", "limits"}
        assert m.latency_p50_ms > 0 and m.latency_p95_ms >= m.latency_p50_ms
        assert set(m.overall) == {"hit", "recall", "mrr", "ndcg"}
    bm25 = result.modes[1]
    assert bm25.per_item["refund"]["hit"] == 1.0 and bm25.ranked["refund"][0] == "a/refunds#0"


def make_beir(root: Path) -> Path:
    write(
        root / "corpus.jsonl",
        "\n".join(
            json.dumps(d)
            for d in [
                {"_id": "c1", "title": "Mask guidance", "text": "Wear a mask in crowded indoor spaces."},
                {"_id": "c2", "title": "Hand washing", "text": "Wash your hands with soap for twenty seconds."},
                {"_id": "c3", "title": "Symptoms", "text": "Fever, dry cough and tiredness are common symptoms."},
            ]
        )
        + "\n",
    )
    write(
        root / "queries.jsonl",
        "\n".join(
            json.dumps(q)
            for q in [
                {"_id": "1", "text": "should I wear a mask indoors"},
                {"_id": "2", "text": "how long to wash hands"},
                {"_id": "3", "text": "an unjudged query"},
            ]
        )
        + "\n",
    )
    write(root / "qrels/test.tsv", "query-id\tcorpus-id\tscore\n1\tc1\t1\n2\tc2\t1\n2\tc3\t0\n")
    return root


def test_import_beir_and_run_retrieval_eval(tmp_path: Path) -> None:
    src = make_beir(tmp_path / "beir")
    out = tmp_path / "imported"
    res = CliRunner().invoke(app, ["goldset", "import-beir", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "imported 3 documents and 2 queries" in res.output
    gold = load_goldset(out / "gold.jsonl")
    assert [(i.id, i.expected_sources) for i in gold.items] == [("q-1", ["corpus/c1"]), ("q-2", ["corpus/c2"])]
    cfg = out / "harness.yaml"
    cfg.write_text(cfg.read_text() + "embedder: {kind: hashing}\n")
    res = CliRunner().invoke(app, ["retrieval-eval", str(cfg), "--k", "2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r/retrieval.json").read_text())
    assert [m["mode"] for m in data["modes"]] == ["vector", "bm25", "hybrid"]
    assert data["modes"][1]["overall"]["hit"] == 1.0
    assert "Retrieval evaluation" in (tmp_path / "r/retrieval.html").read_text()


def test_import_beir_errors_name_the_file(tmp_path: Path) -> None:
    src = make_beir(tmp_path / "beir")
    (src / "qrels/test.tsv").unlink()
    with pytest.raises(GoldSetError, match=r"qrels/test.tsv: missing"):
        import_beir(src, tmp_path / "out")

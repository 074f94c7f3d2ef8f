"""`retrieval-eval --sweep`: settings and a grid applied on top of the config, the current setting first, analysis
variants searched on a copy of the store (nothing re-embedded), paired statistics, JSON + escaped HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write
from ragharness.analysis.sweep import load_sweep
from ragharness.cli import app
from ragharness.core.errors import ConfigError
from ragharness.retrieval.settings import RetrievalConfig

SWEEP = """
settings:
  - {name: "<b>bm25 no stemming</b>", mode: bm25, text_analysis: {stem: false, stop_words: false}}
  - {name: vector, mode: vector, k: 2}
grid:
  mode: [hybrid]
  fusion.method: [rrf, linear]
  fusion.bm25_weight: [0.2, 0.7]
"""


def test_sweep_file_expands_settings_and_grid_on_top_of_the_config(tmp_path: Path) -> None:
    write(tmp_path / "s.yaml", SWEEP)
    base = RetrievalConfig(k=3)
    settings = load_sweep(tmp_path / "s.yaml", base)
    assert [s.name for s in settings][:3] == ["current", "<b>bm25 no stemming</b>", "vector"]
    assert len(settings) == 3 + 4
    grid = settings[3].retrieval
    assert (grid.mode.value, grid.fusion.method, grid.fusion.bm25_weight, grid.k) == ("hybrid", "rrf", 0.2, 3)
    assert (
        settings[1].retrieval.text_analysis.stem is False and settings[1].retrieval.text_analysis.language == "english"
    )
    assert settings[2].retrieval.k == 2
    write(tmp_path / "bad.yaml", "settings: [{name: x, fusion.bm25_weight: 2}]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: setting 1 \(x\): fusion\.bm25_weight"):
        load_sweep(tmp_path / "bad.yaml", base)
    write(tmp_path / "bad2.yaml", "settings: [{name: x, store: opensearch}]\n")
    with pytest.raises(ConfigError, match="may change mode, k, text_analysis and fusion"):
        load_sweep(tmp_path / "bad2.yaml", base)
    write(tmp_path / "empty.yaml", "grid: {}\n")
    with pytest.raises(ConfigError, match="no settings"):
        load_sweep(tmp_path / "empty.yaml", base)


def test_sweep_runs_side_by_side_with_paired_tests_and_writes_json_and_html(mini_project: Path) -> None:
    write(mini_project / "sweep.yaml", SWEEP)
    out = mini_project / "sweep-out"
    res = CliRunner().invoke(
        app,
        [
            "retrieval-eval",
            str(mini_project / "harness.yaml"),
            "--sweep",
            str(mini_project / "sweep.yaml"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "retrieval sweep" in res.output and "significant after Holm" in res.output
    data = json.loads((out / "sweep.json").read_text())
    names = [s["name"] for s in data["settings"]]
    assert names[0] == "current" and data["settings"][0]["vs_current"] is None
    for s in data["settings"][1:]:
        v = s["vs_current"]
        assert v["n"] == data["n_items"] and v["ci_low"] <= v["diff"] <= v["ci_high"] and 0 <= v["p_holm"] <= 1
    no_stem = next(s for s in data["settings"] if s["name"].startswith("<b>"))
    assert no_stem["text_analysis"]["stem"] is False
    assert list((out / "stores").glob("analysis-*")), "the analysis variant searched its own copy of the store"
    page = (out / "sweep.html").read_text()
    assert "&lt;b&gt;bm25 no stemming&lt;/b&gt;" in page and "<b>bm25" not in page
    assert "Δ nDCG vs current" in page and "nDCG per intent" in page

"""The first task of every user: their own documents. `ragharness init` makes a project that runs as it is, every
config key is documented from the models, and a misspelt key says what was meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragharness.cli import app
from ragharness.core.errors import ConfigError
from ragharness.pipeline.config import load_config

cli = CliRunner()


@pytest.mark.integration
def test_init_makes_a_project_that_runs_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "my-eval"
    res = cli.invoke(app, ["init", str(folder)])
    assert res.exit_code == 0, res.output
    assert "ragharness run" in res.output and "goldset lint" in res.output
    assert cli.invoke(app, ["init", str(folder)]).exit_code == 3  # never over an existing project
    lint = cli.invoke(app, ["goldset", "lint", str(folder / "gold.yaml")])
    assert lint.exit_code == 0, lint.output
    run = cli.invoke(app, ["run", str(folder / "harness.yaml")])
    assert run.exit_code == 0, run.output
    assert "report: " in run.output and "PASS retrieval_hit" in run.output
    checked = cli.invoke(app, ["goldset", "lint", str(folder / "gold.yaml"), "--config", str(folder / "harness.yaml")])
    assert checked.exit_code == 0, checked.output


def test_every_key_is_in_the_reference_and_a_misspelt_key_says_what_was_meant(tmp_path: Path) -> None:
    ref = cli.invoke(app, ["config-reference"])
    assert ref.exit_code == 0
    for key in ("`corpus.path`", "`retrieval.fusion.method`", "`runner.cache`", "`candidates[].provider`"):
        assert key in ref.output, key
    starter = Path(__file__).resolve().parents[1] / "ragharness/cli/starter/harness.yaml"
    bad = tmp_path / "harness.yaml"
    bad.write_text(starter.read_text().replace("retrieval: {mode", "retreival: {mode").replace("k: 5}", "kk: 5}"))
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "retreival: unknown key; did you mean `retrieval`?" in str(info.value)

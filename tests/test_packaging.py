"""What `pip install ragharness` (a wheel, not this checkout) carries: every data file the package reads at run
time (prompts, prices, templates, detector weights, the starter project) is declared as package data. A file left
out works in an editable install and fails for every user who installs the package."""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragharness.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_of_the_package_is_shipped_in_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["ragharness"]
    package = ROOT / "ragharness"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert "guardrails/weights/unsafe_request.json" in data  # the scan sees the files it must
    left_out = [f for f in data if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
    assert not left_out, f"add these to [tool.setuptools.package-data] in pyproject.toml: {left_out}"


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """As if the extra were not installed: importing these modules fails as a missing package does."""
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def _project(tmp_path: Path, config_yaml: str) -> Path:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/a.md").write_text("# A\n\nRefunds take five days.\n")
    (tmp_path / "gold.yaml").write_text(
        "items:\n- {id: q1, question: 'How long do refunds take?', intent: billing, "
        "reference_answer: Five days., expected_sources: [a]}\n"
    )
    base = (
        BASE if "candidates" not in config_yaml else BASE.replace("candidates: [{name: a, provider: extractive}]\n", "")
    )
    (tmp_path / "harness.yaml").write_text(base + f"data_dir: {tmp_path / 'data'}\n" + config_yaml)
    return tmp_path / "harness.yaml"


BASE = "name: t\ncorpus: {path: corpus}\ngoldset: gold.yaml\ncandidates: [{name: a, provider: extractive}]\n"


@pytest.mark.parametrize(
    ("config_yaml", "hidden", "extra"),
    [
        ("store: {kind: opensearch, options: {url: 'http://127.0.0.1:9'}}\n", ("opensearchpy",), "opensearch"),
        ("candidates: [{name: b, provider: 'bedrock:anthropic.claude-3-haiku'}]\n", ("boto3", "botocore"), "aws"),
    ],
)
def test_a_config_that_needs_a_missing_extra_is_told_which_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_yaml: str, hidden: tuple[str, ...], extra: str
) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/a.md").write_text("# A\n\nRefunds take five days.\n")
    (tmp_path / "gold.yaml").write_text("items:\n- {id: q1, question: How long do refunds take?, intent: billing}\n")
    base = (
        BASE if "candidates" not in config_yaml else BASE.replace("candidates: [{name: a, provider: extractive}]\n", "")
    )
    (tmp_path / "harness.yaml").write_text(base + f"data_dir: {tmp_path / 'data'}\n" + config_yaml)
    _hide(monkeypatch, *hidden)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "harness.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 3, result.output
    assert f"ragharness[{extra}]" in result.output and "Traceback" not in result.output


def test_the_review_app_without_its_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "uvicorn", "fastapi")
    result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path), "--local"])
    assert result.exit_code == 3, result.output
    assert "ragharness[serve]" in result.output


def test_the_library_api_names_the_missing_extra_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ragharness
    from ragharness.core.errors import MissingExtraError

    cfg = _project(tmp_path, "candidates: [{name: b, provider: 'bedrock:anthropic.claude-3-haiku'}]\n")
    _hide(monkeypatch, "boto3", "botocore")
    with pytest.raises(MissingExtraError, match=r"ragharness\[aws\]"):
        ragharness.evaluate(cfg, out_dir=tmp_path / "run")


def test_the_embedded_defaults_need_no_extra() -> None:
    """The runtime install (`make demo`, `pip install ragharness`) leaves the extras' packages out."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = " ".join(pyproject["project"]["dependencies"])
    for extra in ("aws", "opensearch", "serve"):
        for dep in pyproject["project"]["optional-dependencies"][extra]:
            assert dep.split(">")[0].split("=")[0] not in runtime, f"{dep} is in the runtime dependencies"
    assert "ragharness[aws,opensearch,serve]" in pyproject["project"]["optional-dependencies"]["dev"]


def test_the_run_points_at_the_serve_extra_when_the_review_app_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragharness.cli.run_cmds import _serve_command

    assert "ragharness[serve]" not in _serve_command(tmp_path)
    _hide(monkeypatch, "fastapi")
    assert _serve_command(tmp_path).endswith("(first install the review app: pip install 'ragharness[serve]')")

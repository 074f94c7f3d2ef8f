from __future__ import annotations

from pathlib import Path

import pytest

from conftest import MINIMAL_CONFIG, write
from ragharness.core.errors import ConfigError
from ragharness.core.settings import resolve_env
from ragharness.pipeline.components import build_guardrails, build_providers
from ragharness.pipeline.config import load_config


def test_valid_config_resolves_paths_against_its_folder(mini_project: Path) -> None:
    cfg = load_config(mini_project / "harness.yaml")
    assert cfg.resolve(cfg.corpus.path) == (mini_project / "corpus").resolve()
    assert [c.name for c in cfg.candidates] == ["ext", "rep"]
    assert cfg.retrieval.k == 3


def test_unknown_key_names_file_key_path_and_fix(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", MINIMAL_CONFIG.format(mode="hybrid").replace("chunk_overlap: 8", "overlapp: 8"))
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert f"{f}: chunking.overlapp: unknown key" in str(e.value)


def test_bad_enum_value_lists_what_is_allowed(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", MINIMAL_CONFIG.format(mode="semantic"))
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "retrieval.mode" in msg and "'vector', 'bm25' or 'hybrid'" in msg and "'semantic'" in msg


def test_literal_secret_is_refused(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG.format(mode="hybrid").replace(
        "options: {file: replay.jsonl}", "options: {file: replay.jsonl, api_key: sk-live-123}"
    )
    with pytest.raises(ConfigError, match=r"candidates\[1\]\.options\.api_key: secrets must be environment"):
        load_config(write(tmp_path / "h.yaml", text))


def test_env_reference_is_kept_and_resolved_only_on_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "s3cret")
    assert resolve_env("${MY_KEY}", what="x") == "s3cret"
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        resolve_env("${MY_KEY}", what="candidates[0].options.api_key")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "name: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path / "list.yaml", "- a\n- b\n"))


def test_missing_required_key(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG.format(mode="hybrid").replace("goldset: gold.yaml\n", "")
    with pytest.raises(ConfigError, match=r"goldset: Field required"):
        load_config(write(tmp_path / "h.yaml", text))


def test_duplicate_candidate_names(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG.format(mode="hybrid").replace("name: rep", "name: ext")
    with pytest.raises(ConfigError, match="candidate names must be unique; repeated: ext"):
        load_config(write(tmp_path / "h.yaml", text))


def test_unknown_provider_lists_valid_forms(mini_project: Path) -> None:
    f = mini_project / "harness.yaml"
    f.write_text(f.read_text().replace("provider: extractive", "provider: gpt5:turbo"))
    with pytest.raises(ConfigError) as e:
        build_providers(load_config(f))
    assert "candidates[0].provider: unknown provider 'gpt5'" in str(e.value)
    assert "extractive" in str(e.value) and "replay" in str(e.value)


def test_bad_provider_options_name_the_candidate(mini_project: Path) -> None:
    f = mini_project / "harness.yaml"
    f.write_text(f.read_text().replace("options: {file: replay.jsonl}", "options: {file: missing.jsonl}"))
    with pytest.raises(ConfigError, match=r"candidates\[1\] \(rep\).*replay file .*missing.jsonl not found"):
        build_providers(load_config(f))


def test_bad_guardrail_options(mini_project: Path) -> None:
    f = mini_project / "harness.yaml"
    f.write_text(f.read_text().replace("input: [{kind: pii}]", "input: [{kind: pii, options: {entities: [DNA]}}]"))
    with pytest.raises(ConfigError, match=r"guardrails.input\[0\].options: unknown PII entities \['DNA'\]"):
        build_guardrails(load_config(f))


def test_unknown_filter_field(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG.format(mode="hybrid").replace("k: 3}", "k: 3, filters: {colour: red}}")
    with pytest.raises(ConfigError, match="unknown filter field"):
        load_config(write(tmp_path / "h.yaml", text))


def test_the_judge_is_configured_as_a_scorer_with_options_or_as_its_section_never_both(tmp_path: Path) -> None:
    base = MINIMAL_CONFIG.format(mode="hybrid")
    as_scorer = load_config(
        write(tmp_path / "a.yaml", base + "scorers: [correctness, {judge: {provider: mock, mode: online}}]\n")
    )
    as_section = load_config(write(tmp_path / "b.yaml", base + "judge: {provider: mock, mode: online}\n"))
    assert as_scorer.judge == as_section.judge and as_scorer.judge is not None
    assert as_scorer.judge.provider == "mock"
    assert as_scorer.scorer_names == ["correctness", "judge"]
    assert as_scorer.model_dump(mode="json")["scorers"] == ["correctness", "judge"]  # stored in one form
    with pytest.raises(ConfigError, match=r"scorers\[0\]: the judge has options here and a `judge:` section too"):
        load_config(
            write(tmp_path / "c.yaml", base + "judge: {provider: mock}\nscorers: [{judge: {provider: mock}}]\n")
        )
    with pytest.raises(ConfigError, match=r"scorers\[0\] \(judge\): mode: Input should be 'online', 'batch' or 'auto'"):
        load_config(write(tmp_path / "d.yaml", base + "scorers: [{judge: {provider: mock, mode: sometimes}}]\n"))

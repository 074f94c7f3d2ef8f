"""Fault tests: SIGKILL and resume, a provider that always fails, a budget that runs out mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faultkit import N_ITEMS, calls, cli, final, project, scores

pytestmark = pytest.mark.faults


def test_sigkill_midway_then_resume_repeats_no_completed_call(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    cfg = project(reference)
    done = cli("run", str(cfg), "--out", str(reference / "run"), cwd=reference)
    assert done.returncode == 0, done.stdout + done.stderr

    root = tmp_path / "killed"
    cfg = project(root, latency=150)
    run_dir = root / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragharness", "run", str(cfg), "--out", str(run_dir)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gens_file = run_dir / "generations.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if gens_file.is_file() and len(gens_file.read_text().splitlines()) >= 12:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    completed = {
        (g["item_id"], g["candidate"])
        for g in map(json.loads, gens_file.read_text().splitlines())
        if g.get("error") is None
    }
    assert 12 <= len(completed) < 2 * N_ITEMS, "the kill must land mid-run"
    calls_before = len(calls(root))

    resumed = cli("run", str(cfg), "--resume", str(run_dir), cwd=root)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = calls(root)[calls_before:]
    assert not set(after) & completed, "a completed call was repeated"
    assert len(after) == 2 * N_ITEMS - len(completed)
    assert final(run_dir) == final(reference / "run")
    assert scores(run_dir) == scores(reference / "run")
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["resumed"] == 1 and manifest["pending"] == 0 and manifest["status"] == "pass"


def test_one_provider_always_failing(tmp_path: Path) -> None:
    cfg = project(tmp_path, latency=1, m2_error_rate=1.0)
    res = cli("run", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 4, res.stdout + res.stderr
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    c = {x["candidate"]: x for x in summary["candidates"]}
    assert c["m1"]["errors"] == 0 and c["m1"]["generations"] == N_ITEMS
    assert c["m2"]["errors"] == N_ITEMS and c["m2"]["generations"] == N_ITEMS
    assert c["m2"]["metrics"]["correctness"]["n"] == N_ITEMS and c["m2"]["metrics"]["correctness"]["mean"] == 0
    assert summary["status"] == "incomplete"
    # fatal errors are not retried: exactly one call per item
    assert sum(1 for _, cand in calls(tmp_path) if cand == "m2") == N_ITEMS


def test_budget_exceeded_mid_run_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    ref_cfg = project(reference, latency=1)
    assert cli("run", str(ref_cfg), "--out", str(reference / "run"), cwd=reference).returncode == 0

    root = tmp_path / "budget"
    cfg = project(root, latency=1, extra="budget_usd: 2.5")
    run_dir = root / "run"
    res = cli("run", str(cfg), "--out", str(run_dir), cwd=root)
    assert res.returncode == 4, res.stdout + res.stderr
    assert "budget_usd reached" in res.stdout and "--resume" in res.stdout
    manifest = json.loads((run_dir / "run.json").read_text())
    assert 0 < manifest["pending"] < 2 * N_ITEMS and manifest["spent_usd"] <= 2.5
    made = len(calls(root))
    assert made == 2 * N_ITEMS - manifest["pending"]

    cfg.write_text(cfg.read_text().replace("budget_usd: 2.5", "budget_usd: 100"))
    res = cli("run", str(cfg), "--resume", str(run_dir), cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(calls(root)) == 2 * N_ITEMS, "every call made exactly once across the two sessions"
    assert final(run_dir) == final(reference / "run")


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    cfg = project(tmp_path, latency=1)
    assert cli("run", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path).returncode == 0
    cfg.write_text(cfg.read_text().replace("k: 3", "k: 4"))
    res = cli("run", str(cfg), "--resume", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 3 and "the config changed since the run started (retrieval)" in res.stderr


def test_dry_run_calls_nothing_and_estimates_cost(tmp_path: Path) -> None:
    cfg = project(tmp_path, latency=1)
    assert cli("ingest", str(cfg), cwd=tmp_path).returncode == 0
    res = cli("run", str(cfg), "--dry-run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert calls(tmp_path) == [] and not (tmp_path / "runs").exists()
    assert "call m1 q00: ~" in res.stdout and "no model was called" in res.stdout
    assert "estimated total: $" in res.stdout
    lines = [line for line in res.stdout.splitlines() if line.startswith("call ")]
    assert len(lines) == 2 * N_ITEMS

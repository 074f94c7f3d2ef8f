"""Fault suite, run directories: SIGKILL at every stage then resume, torn appends, full disks, a failing cache,
damaged runs handed to report/score/compare, and --out / --baseline pointing where they must not."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from faultkit import N_ITEMS, assert_nothing_torn, calls, cli, final, project, scores
from ragharness.core.errors import RunError
from ragharness.runs.rundir import FORMAT_VERSION, RunDir

pytestmark = pytest.mark.faults

KILL_POINTS = [
    "run:created",
    "run:preparing",
    "run:prepared",
    "run:generated",
    "run:scored",
    "run:summarised",
    "run:reported",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    cfg = project(root, latency=1)
    res = cli("run", str(cfg), "--out", str(root / "run"), cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    return root / "run"


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_every_stage_then_resume_completes(tmp_path: Path, reference: Path, point: str) -> None:
    cfg = project(tmp_path, latency=1)
    run_dir = tmp_path / "run"
    killed = cli("run", str(cfg), "--out", str(run_dir), cwd=tmp_path, kill_at=point)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert (run_dir / "run.json").is_file()
    assert json.loads((run_dir / "run.json").read_text())["stage"] != "finished"
    made = calls(tmp_path)
    assert len(made) == len(set(made)), "a call was made twice before the kill"
    resumed = cli("run", str(cfg), "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = calls(tmp_path)
    assert sorted(set(after)) == sorted(after), "a completed call was repeated after the resume"
    assert len(after) == 2 * N_ITEMS
    assert final(run_dir) == final(reference)
    assert scores(run_dir) == scores(reference)
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["stage"] == "finished" and manifest["status"] == "pass" and manifest["resumed"] == 1
    assert_nothing_torn(run_dir)


def test_append_after_a_torn_line_repairs_it_first(tmp_path: Path, reference: Path) -> None:
    cfg = project(tmp_path, latency=1)
    run_dir = tmp_path / "run"
    assert cli("run", str(cfg), "--out", str(run_dir), cwd=tmp_path, kill_at="run:prepared").returncode == -9
    with (run_dir / "generations.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"item_id": "q00", "candidate": "m1", "te')  # what a kill mid-append leaves
    resumed = cli("run", str(cfg), "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert final(run_dir) == final(reference)
    assert_nothing_torn(run_dir)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    done = subprocess.run(cmd, capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root); the in-process ENOSPC test covers disk-full instead")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("leave_kib", [8, 96])
def test_disk_full_fails_clearly_leaves_nothing_torn_and_resumes(
    tmp_path: Path, small_disk: Path, reference: Path, leave_kib: int
) -> None:
    cfg = project(tmp_path, latency=1)
    run_dir = small_disk / "run"
    filler = _fill(small_disk, leave_kib * 1024)
    res = cli("run", str(cfg), "--out", str(run_dir), cwd=tmp_path)
    assert res.returncode == 4, res.stdout + res.stderr
    assert "no space left on the device" in res.stderr and "bytes free" in res.stderr
    assert f"--resume {run_dir}" in res.stderr
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["stage"] != "finished" and manifest["status"] not in ("pass", "fail")
    assert not (run_dir / "report.html").exists() or manifest["stage"] == "finished"
    filler.unlink()
    assert_nothing_torn(run_dir)
    resumed = cli("run", str(cfg), "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert final(run_dir) == final(reference)
    assert len(calls(tmp_path)) == len(set(calls(tmp_path))) == 2 * N_ITEMS, "no paid call repeated or lost"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "pass"


def test_disk_full_injected_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no tmpfs can be mounted: ENOSPC injected into the report write."""
    from ragharness.core.errors import DiskFullError
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.evaluation import execute_run
    from ragharness.reporting import report as report_module

    cfg = load_config(project(tmp_path, latency=1))
    real = report_module.atomic_write_text
    monkeypatch.setattr(report_module, "atomic_write_text", lambda p, t: _raise_disk_full(p))
    with pytest.raises(DiskFullError) as err:
        execute_run(cfg, out_dir=tmp_path / "run", log=lambda s: None)
    assert "report.html" in str(err.value) and err.value.run_dir == tmp_path / "run"
    assert json.loads((tmp_path / "run/run.json").read_text())["stage"] == "generated"  # every call made
    monkeypatch.setattr(report_module, "atomic_write_text", real)
    result = execute_run(cfg, resume=tmp_path / "run", log=lambda s: None)
    assert result.summary.status == "pass" and (tmp_path / "run/report.html").is_file()
    assert len(calls(tmp_path)) == 2 * N_ITEMS


def _raise_disk_full(path: Path) -> None:
    import errno

    from ragharness.core.fileio import guard_disk

    def boom() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    guard_disk(path, boom)


def test_corrupt_response_cache_is_skipped_with_a_warning(tmp_path: Path) -> None:
    cfg = project(tmp_path, latency=1)
    cfg.write_text(cfg.read_text().replace("output_tokens: 10}", "output_tokens: 10, cacheable: true}", 1))
    cache = tmp_path / "data/cache/responses.sqlite"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"this is not a database" * 100)
    res = cli("run", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "response cache" in res.stderr and "disabled" in res.stderr
    assert len(calls(tmp_path)) == 2 * N_ITEMS


def test_cache_write_failure_loses_and_repeats_no_paid_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragharness.generation.cache import ResponseCache
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.evaluation import execute_run

    cfg_file = project(tmp_path, latency=1)
    cfg_file.write_text(cfg_file.read_text().replace("output_tokens: 10}", "output_tokens: 10, cacheable: true}", 1))
    real_put = ResponseCache.put

    def locked_put(self: ResponseCache, key: str, provider: str, response: object) -> None:
        if self._db is not None:
            self._db.close()
            self._db = _LockedDb()  # type: ignore[assignment]
        real_put(self, key, provider, response)  # type: ignore[arg-type]

    monkeypatch.setattr(ResponseCache, "put", locked_put)
    result = execute_run(load_config(cfg_file), out_dir=tmp_path / "run", log=lambda s: None)
    assert result.summary.status == "pass"
    assert len(calls(tmp_path)) == len(set(calls(tmp_path))) == 2 * N_ITEMS
    assert len(final(tmp_path / "run")) == 2 * N_ITEMS


class _LockedDb:
    def execute(self, *args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        return None


def _torn(text: str) -> str:
    """The first half of the lines and half of the next one: a torn record (a cut that happened to fall on a line
    end, or right after a record's closing brace, would leave a shorter but valid file)."""
    lines = text.split("\n")
    k = len(lines) // 2
    return "\n".join(lines[:k]) + "\n" + lines[k][: len(lines[k]) // 2]


DAMAGE = {
    "missing summary": lambda d: (d / "summary.json").unlink(),
    "truncated generations": lambda d: (d / "generations.jsonl").write_text(
        _torn((d / "generations.jsonl").read_text())
    ),
    "empty scores": lambda d: (d / "scores.jsonl").write_text(""),
    "invalid run.json": lambda d: (d / "run.json").write_text("{not json"),
    "missing goldset": lambda d: (d / "goldset.json").unlink(),
}
NAMED = {
    "missing summary": "summary.json",
    "truncated generations": "generations.jsonl",
    "empty scores": "scores.jsonl",
    "invalid run.json": "run.json",
    "missing goldset": "goldset.json",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["report", "score", "compare"])
def test_damaged_run_exits_3_naming_the_file(tmp_path: Path, reference: Path, damage: str, command: str) -> None:
    run_dir = tmp_path / "damaged"
    shutil.copytree(reference, run_dir)
    DAMAGE[damage](run_dir)
    pair = [str(reference), "--candidate-a", "m1", "--candidate-b", "m1"]
    args = [command, str(run_dir)] + (pair if command == "compare" else [])
    res = cli(*args, cwd=tmp_path)
    if command == "score" and NAMED[damage] in ("summary.json", "scores.jsonl"):
        # what re-scoring writes, it re-creates: the answers are intact, so the run is whole again
        assert res.returncode in (0, 1), (res.returncode, res.stdout, res.stderr)  # 1: a gate of the run failed
        assert cli("report", str(run_dir), cwd=tmp_path).returncode == 0
        return
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    assert NAMED[damage] in res.stderr and "Traceback" not in res.stderr


def test_compare_refuses_an_incomplete_run(tmp_path: Path, reference: Path) -> None:
    cfg = project(tmp_path, latency=1, extra="budget_usd: 2.5")
    res = cli("run", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 4
    cmp = cli(
        "compare", str(reference), str(tmp_path / "run"), "--candidate-a", "m1", "--candidate-b", "m1", cwd=tmp_path
    )
    assert cmp.returncode == 3 and "incomplete run cannot be compared" in cmp.stderr, cmp.stdout + cmp.stderr


def test_out_refuses_a_folder_that_is_not_a_run_of_this_config(tmp_path: Path, reference: Path) -> None:
    cfg = project(tmp_path, latency=1)
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.md").write_text("years of work")
    res = cli("run", str(cfg), "--out", str(mine), cwd=tmp_path)
    assert res.returncode == 3 and "not a run directory" in res.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.md"] and calls(tmp_path) == []
    res = cli("run", str(cfg), "--out", str(tmp_path / "corpus" / "runs"), cwd=tmp_path)
    assert res.returncode == 3 and "inside the corpus" in res.stderr
    other = tmp_path / "other"
    shutil.copytree(reference, other)
    manifest = json.loads((other / "run.json").read_text())
    manifest["name"] = "someone-else"
    (other / "run.json").write_text(json.dumps(manifest))
    res = cli("run", str(cfg), "--out", str(other), cwd=tmp_path)
    assert res.returncode == 3 and "someone-else" in res.stderr and calls(tmp_path) == []


def test_nightly_baseline_must_be_a_run_inside_the_store(tmp_path: Path, reference: Path) -> None:
    cfg = project(tmp_path, latency=1)
    outside = tmp_path / "elsewhere"
    shutil.copytree(reference, outside)
    for baseline in (str(outside), "../elsewhere", "no-such-run"):
        res = cli("nightly", str(cfg), "--baseline", baseline, cwd=tmp_path)
        assert res.returncode == 3, (baseline, res.stdout, res.stderr)
        assert "run store" in res.stderr
    assert calls(tmp_path) == [], "the baseline is checked before any model call"


def test_run_directories_carry_their_format_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    """A run records the layout it was written in; one from before versions (no field) still opens; one from a
    newer ragharness is refused with an upgrade hint instead of being misread."""
    folder = tmp_path / "r"
    folder.mkdir()
    manifest = {"run_id": "r", "name": "n", "started_at": "2026-01-01T00:00:00+00:00"}
    (folder / "run.json").write_text(json.dumps(manifest))
    assert RunDir.open(folder).manifest().format_version == 0  # written before versions: opens as it is
    (folder / "run.json").write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match=r"written by a newer ragharness .*upgrade ragharness"):
        RunDir.open(folder)

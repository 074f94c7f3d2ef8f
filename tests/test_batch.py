"""The batch job machinery (ragharness.batch.jobs): shards within quotas, the journal, resume after a kill at every
step without a second job, whole-job failures, the budget, the wait limit, and flat memory at 50,000 records."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ragharness.batch import jobs as jobs_mod
from ragharness.batch.base import BatchRecord, JobLimits
from ragharness.batch.jobs import JobRunner, slug
from ragharness.core.errors import BatchWaiting
from ragharness.testing.batch import InstantBackend, check_batch_backend


def echo(body: dict[str, Any]) -> dict[str, Any]:
    return {"text": f"answer to {body['q']}"}


def recs(n: int, cost: float = 0.01, pad: int = 0) -> list[BatchRecord]:
    return [BatchRecord(key=f"k{i:05d}", body={"q": i, "pad": "x" * pad}, estimate_usd=cost) for i in range(n)]


def runner(backend: InstantBackend, tmp: Path, **kw: Any) -> JobRunner:
    return JobRunner(backend, tmp / "work", "cand@v1", tag="t1", poll_interval_s=0.0, sleep=lambda s: None, **kw)


class Killed(BaseException):
    """A stand-in for SIGKILL inside one process: nothing after the point runs (no except/finally in our code
    catches a BaseException), and the next JobRunner starts from what is on disk."""


def kill_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def kill(name: str) -> None:
        if name == point:
            raise Killed(name)

    monkeypatch.setattr(jobs_mod, "kill_point", kill)


def test_instant_backend_meets_the_contract(tmp_path: Path) -> None:
    check_batch_backend(InstantBackend(tmp_path / "p", echo), tmp_path / "w", recs(30))


def test_shards_respect_record_and_byte_limits_and_the_minimum(tmp_path: Path) -> None:
    backend = InstantBackend(
        tmp_path / "p", echo, limits=JobLimits(min_records=40, max_records=100, max_file_bytes=10_000)
    )
    jr = runner(backend, tmp_path)
    records = recs(230, pad=10)
    state = jr.run_round(lambda: iter(records + records[:5]))  # duplicates go once
    sizes = [s.records for s in state.shards.values()]
    assert sum(sizes) == 230 and all(40 <= n <= 100 for n in sizes), sizes  # the last one balanced up to the minimum
    assert all(s.bytes <= 10_000 for s in state.shards.values())
    assert backend.calls["create"] == len(sizes)
    results = {r.key: r for r, _ in jr.results()}
    assert len(results) == 230 and results["k00007"].output == {"text": "answer to 7"}
    # a byte limit smaller than the records makes more, smaller shards
    small = InstantBackend(tmp_path / "q", echo, limits=JobLimits(max_records=1000, max_file_bytes=2048))
    state = JobRunner(small, tmp_path / "w2", "g", tag="t", poll_interval_s=0, sleep=lambda s: None).run_round(
        lambda: iter(recs(100, pad=100))
    )
    assert len(state.shards) > 5 and all(s.bytes <= 2048 for s in state.shards.values())


@pytest.mark.parametrize(
    "point",
    [
        "batch:sharding",
        "batch:uploading",
        "batch:uploaded",
        "batch:created",
        "batch:polling",
        "batch:downloading",
        "batch:downloaded",
    ],
)
def test_a_kill_at_any_step_resumes_to_the_same_results_without_a_second_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    backend = InstantBackend(tmp_path / "p", echo, limits=JobLimits(max_records=20), polls=2)
    records = recs(50)
    kill_at(monkeypatch, point)
    with pytest.raises(Killed):
        runner(backend, tmp_path).run_round(lambda: iter(records))
    monkeypatch.setattr(jobs_mod, "kill_point", lambda name: None)
    resumed = runner(backend, tmp_path)
    state = resumed.run_round(lambda: iter(records))
    assert state.round == 1 and len(state.jobs) == 3
    assert backend.calls["create"] == 3, f"killed at {point}: a job was created twice"
    assert {r.key: r.output for r, _ in resumed.results()} == {
        r.key: {"text": f"answer to {r.body['q']}"} for r in records
    }
    assert backend.calls.get("find", 0) >= backend.calls["create"]  # every job looked for by name before creating
    if point in ("batch:downloading", "batch:downloaded"):
        assert backend.calls["results"] > 3  # the earlier process's sealed download is fetched again


@pytest.mark.security
def test_a_lost_journal_finds_the_jobs_again_by_name_and_pays_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = InstantBackend(tmp_path / "p", echo, limits=JobLimits(max_records=20), polls=2)
    records = recs(50)
    kill_at(monkeypatch, "batch:polling")
    with pytest.raises(Killed):
        runner(backend, tmp_path).run_round(lambda: iter(records))
    monkeypatch.setattr(jobs_mod, "kill_point", lambda name: None)
    (tmp_path / "work" / "journal.jsonl").unlink()  # the run folder lost its journal (restored from an old copy, ...)
    state = runner(backend, tmp_path).run_round(lambda: iter(records))
    assert len(state.jobs) == 3 and backend.calls["create"] == 3, "a second job was created for the same records"


@pytest.mark.security
def test_downloaded_results_are_sealed_at_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill between download and scrub leaves no readable model output on disk."""
    backend = InstantBackend(tmp_path / "p", echo, limits=JobLimits(max_records=20))
    records = recs(30)
    kill_at(monkeypatch, "batch:downloaded")
    with pytest.raises(Killed):
        runner(backend, tmp_path).run_round(lambda: iter(records))
    files = list((tmp_path / "work").rglob("results-*.jsonl"))
    assert files
    for f in files:
        text = f.read_text()
        assert text.strip() and "answer to" not in text and '"key"' not in text


def test_a_job_that_finishes_while_the_harness_is_down_is_collected(tmp_path: Path) -> None:
    backend = InstantBackend(tmp_path / "p", echo, polls=1000)
    ticks = iter(range(0, 10_000, 10))
    jr = runner(backend, tmp_path, max_wait_s=25, clock=lambda: float(next(ticks)))
    with pytest.raises(BatchWaiting) as waited:
        jr.run_round(lambda: iter(recs(10)))
    assert waited.value.jobs == ["job-1"] and "still running" in str(waited.value)
    backend.finish("job-1")  # done at the provider while nobody polled
    state = runner(backend, tmp_path).run_round(lambda: iter(recs(10)))
    assert state.shards[1].status == "completed" and backend.calls["create"] == 1
    assert sum(1 for _ in runner(backend, tmp_path).results()) == 10


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_failed_or_expired_job_keeps_what_it_answered_and_marks_the_rest_retryable(
    tmp_path: Path, outcome: str
) -> None:
    lines: list[str] = []
    backend = InstantBackend(tmp_path / "p", echo, outcome=outcome)
    jr = runner(backend, tmp_path, progress=lines.append)
    jr.run_round(lambda: iter(recs(5)))
    results = [r for r, _ in jr.results()]
    assert len(results) == 5
    errors = [r.error for r in results if r.error]
    code = {"failed": "BatchJobFailed", "expired": "BatchJobExpired"}[outcome]
    assert len(errors) == (5 if outcome == "failed" else 4)
    assert all((e.code == code and e.retryable and "ran out" in e.message) or "rejected" in e.message for e in errors)
    assert any(f"{outcome} at instant:fake" in line for line in lines), lines


def test_budget_refuses_a_job_before_it_is_submitted(tmp_path: Path) -> None:
    backend = InstantBackend(tmp_path / "p", echo, limits=JobLimits(max_records=10))
    granted: list[float] = []

    def reserve(estimate: float, committed: bool) -> bool:
        if sum(granted) + estimate > 0.25:
            return False
        granted.append(estimate)
        return True

    lines: list[str] = []
    state = runner(backend, tmp_path, reserve=reserve, progress=lines.append).run_round(lambda: iter(recs(30, 0.01)))
    assert backend.calls["create"] == 2 and state.refused == 10
    assert any("exceeds what is left of budget_usd" in line for line in lines)


def test_record_failures_and_unreadable_journal_lines(tmp_path: Path) -> None:
    backend = InstantBackend(tmp_path / "p", echo, fail_keys={"k00001"})
    jr = runner(backend, tmp_path)
    jr.run_round(lambda: iter(recs(3)))
    failed = [r for r, _ in jr.results() if r.error]
    assert [(r.key, r.error.code if r.error else "") for r in failed] == [("k00001", "500")]
    journal = tmp_path / "work" / "journal.jsonl"
    journal.write_text(journal.read_text() + '{"event": "created", "gro')  # a torn tail from a kill: ignored
    assert jr.rounds()[1].finished
    journal.write_text("garbage\n" + journal.read_text())
    with pytest.raises(Exception, match="line 1: not a batch journal event"):
        jr.rounds()


def test_job_names_are_valid_for_bedrock() -> None:
    import re

    pattern = re.compile(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}")  # CreateModelInvocationJob jobName
    for group in ("judge", "claude@v2:prompt.x", "a" * 80, "é"):
        name = f"rh-0123abcd-{slug(group)}-r12-s123"
        assert len(name) <= 63 and pattern.fullmatch(name), name


def test_fifty_thousand_records_keep_memory_flat(tmp_path: Path) -> None:
    """Sharding, the fake provider, downloading and the results index over 50,000 records: peak RSS grows by less
    than 200 MB (measured in a fresh process)."""
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from ragharness.batch.base import BatchRecord
        from ragharness.batch.jobs import JobRunner
        from ragharness.batch.results import ResultIndex
        from ragharness.testing.batch import InstantBackend

        def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        root = Path({str(tmp_path)!r})
        before = peak()
        backend = InstantBackend(root / "p", lambda body: {{"text": "an answer of some length " * 8}})
        jobs = JobRunner(backend, root / "w", "big", tag="t", poll_interval_s=0, sleep=lambda s: None)
        def records():
            for i in range(50_000):
                yield BatchRecord(key=f"{{i:064x}}", body={{"messages": [{{"role": "user", "content": "q" * 1500}}]}})
        state = jobs.run_round(records)
        index = ResultIndex().load(jobs)
        assert len(index) == 50_000 and index.get(f"{{123:064x}}")[0].output
        print(json.dumps({{"growth_mb": peak() - before, "jobs": len(state.jobs)}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"50,000 records: peak RSS growth {figures['growth_mb']:.0f} MB, {figures['jobs']} job")
    assert figures["jobs"] == 1
    assert figures["growth_mb"] < 200, figures

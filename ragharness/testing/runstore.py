"""Contract suite for run stores (where finished runs live): subclasses supply `run_store` (an empty store) and
`finished_run` (a factory `(folder, run_id) -> RunDir` making a finished run to save)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ragharness.core.errors import RunError
from ragharness.runs.rundir import RunDir
from ragharness.runs.store import RunStore

MakeRun = Callable[[Path, str], RunDir]


class RunStoreContract:
    def test_is_a_run_store(self, run_store: RunStore) -> None:
        assert isinstance(run_store, RunStore) and run_store.location

    def test_empty_store_lists_nothing(self, run_store: RunStore) -> None:
        assert run_store.list_runs() == []

    def test_saved_runs_are_listed_and_open_equal(
        self, run_store: RunStore, finished_run: MakeRun, tmp_path: Path
    ) -> None:
        runs = [finished_run(tmp_path / "made", f"run-0{n}") for n in (2, 1)]
        for run in runs:
            run_store.save(run)
        assert run_store.list_runs() == ["run-01", "run-02"]
        for run in runs:
            opened = run_store.open(run.path.name)
            assert opened.manifest() == run.manifest()
            assert opened.generations() == run.generations() and opened.scores() == run.scores()
            assert opened.goldset() == run.goldset()

    def test_saving_again_replaces(self, run_store: RunStore, finished_run: MakeRun, tmp_path: Path) -> None:
        run = finished_run(tmp_path / "made", "run-01")
        run_store.save(run)
        run_store.save(run)
        assert run_store.list_runs() == ["run-01"]

    @pytest.mark.parametrize("bad", ["run-99", "../escape", "a/b", ".."])
    def test_unknown_or_escaping_ids_are_refused(self, run_store: RunStore, bad: str) -> None:
        with pytest.raises(RunError):
            run_store.open(bad)

    def test_versions_change_when_a_run_changes(
        self, run_store: RunStore, finished_run: MakeRun, tmp_path: Path
    ) -> None:
        run = finished_run(tmp_path / "made", "run-01")
        run_store.save(run)
        before = run_store.versions()
        assert list(before) == ["run-01"] and before["run-01"]
        assert run_store.versions() == before  # stable while nothing changes
        manifest = run.manifest()
        manifest.gate = "regressed"
        run.write_json("run.json", manifest)
        run_store.save(run)
        assert run_store.versions()["run-01"] != before["run-01"]

    def test_fetch_brings_the_named_files(self, run_store: RunStore, finished_run: MakeRun, tmp_path: Path) -> None:
        run = finished_run(tmp_path / "made", "run-01")
        run_store.save(run)
        got = run_store.fetch("run-01", ("run.json", "summary.json", "no-such-file.json"))
        assert got.manifest() == run.manifest()
        assert got.file("summary.json").read_text() == run.file("summary.json").read_text()
        with pytest.raises(RunError):
            run_store.fetch("run-99", ("run.json",))

    def test_appended_records_all_survive_and_come_back_in_order(
        self, run_store: RunStore, finished_run: MakeRun, tmp_path: Path
    ) -> None:
        run_store.save(finished_run(tmp_path / "made", "run-01"))
        assert run_store.read_records("run-01", "labels.jsonl") == []
        lines = [f'{{"item_id": "q{n:03d}", "candidate": "bot"}}' for n in range(5)]
        for line in lines:
            run_store.append_record("run-01", "labels.jsonl", line)
        assert run_store.read_records("run-01", "labels.jsonl") == lines
        assert run_store.open("run-01").read_lines("labels.jsonl") == lines  # an opened run has them too
        with pytest.raises(RunError):
            run_store.append_record("run-01", "scores.jsonl", "{}")  # only review records are appendable

    def test_store_files_round_trip_and_are_not_runs(self, run_store: RunStore) -> None:
        assert run_store.read_meta("keys.json") is None
        run_store.write_meta("keys.json", '{"keys": []}')
        assert run_store.read_meta("keys.json") == '{"keys": []}'
        assert run_store.list_runs() == [] and run_store.versions() == {}
        with pytest.raises(RunError):
            run_store.write_meta("../escape.json", "{}")

    def test_store_files_update_read_modify_write(self, run_store: RunStore) -> None:
        assert run_store.update_meta("pins.json", lambda text: (text or "") + "a") == "a"
        assert run_store.update_meta("pins.json", lambda text: (text or "") + "b") == "ab"
        assert run_store.read_meta("pins.json") == "ab"
        with pytest.raises(RunError):
            run_store.update_meta("../escape.json", lambda text: "{}")

    def test_concurrent_updates_of_a_store_file_lose_nothing(self, run_store: RunStore) -> None:
        """Writers in threads, each appending its mark: every mark survives (a lock, or conditional writes)."""
        import threading

        errors: list[BaseException] = []

        def add(mark: str) -> None:
            try:
                run_store.update_meta("marks.json", lambda text: (text or "") + mark)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=add, args=(chr(97 + n),)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sorted(run_store.read_meta("marks.json") or "") == [chr(97 + n) for n in range(8)]

"""Contract suite for run stores (where finished runs live): subclasses supply `run_store` (an empty store) and
`finished_run` (a factory `(folder, run_id) -> RunDir` making a finished run to save)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ragharness.errors import RunError
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

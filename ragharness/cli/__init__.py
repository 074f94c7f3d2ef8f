"""The `ragharness` command line (typer).

Exit codes: 0 pass; 1 a threshold gate failed; 2 usage error; 3 configuration or input error (config, gold
set, corpus, run directory); 4 the run is incomplete (some calls failed for good); 5 (nightly) a significant
regression against the baseline; 6 (nightly) another nightly run holds the lock.
"""

from ragharness.cli import data_cmds, gate_cmds, guard_cmds, run_cmds, serve_cmds  # noqa: F401 - importing registers the commands
from ragharness.cli._app import ExitCode, app, print_summary


def main() -> None:
    app()


__all__ = ["ExitCode", "app", "main", "print_summary"]

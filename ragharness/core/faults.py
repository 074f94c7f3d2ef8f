"""Named kill points for the fault suite.

`RAGHARNESS_KILL_AT=<name>` makes the process SIGKILL itself when it reaches that point, which is how the fault
tests kill a run or an ingest at an exact stage (between writing new chunks and deleting stale ones, right after
run.json appears, between the summary and the report, ...) instead of racing a timer. Unset, a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "RAGHARNESS_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

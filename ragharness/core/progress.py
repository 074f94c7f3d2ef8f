"""How long work reports its progress: `progress(stage, done, total)`, called as items finish. The CLI shows it (a
bar with an ETA in a terminal, a line per stage with counts and elapsed time otherwise); library callers pass
nothing and get `NO_PROGRESS`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, /) -> None: ...


def no_progress(stage: str, done: int, total: int, /) -> None:
    """The progress of a caller that shows none."""
    return None


NO_PROGRESS: Progress = no_progress


Log = Callable[[str], None]
"""Where a stage writes its one-line notes (counts, what was reused, the resume command). The CLI passes its
console; library callers get the room's stdlib logger, so library code never prints."""


def room_log(name: str) -> Log:
    """The default `log` of a room's functions: its stdlib logger at INFO."""
    return logging.getLogger(name).info

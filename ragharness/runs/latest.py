"""Which records of a run count. Files are append-only: a re-score appends new scores, a resumed call appends its
new generation. The latest record per key wins, and this module is the only place that says so."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from ragharness.core.types import Generation, Score

R = TypeVar("R")
V = TypeVar("V")
K = TypeVar("K", bound=Hashable)

ScoreKey = tuple[str, str, str]
"""(item id, candidate, metric): one figure of one answer ('' candidate: an item-level score, shared)."""


def score_key(s: Score) -> ScoreKey:
    return (s.item_id, s.candidate, s.metric)


def latest_by(records: Iterable[R], key: Callable[[R], K], view: Callable[[R], V]) -> dict[K, V]:
    """The latest record per key, kept as `view` makes it (a stream of records is read once; only the views of the
    winners are held)."""
    return {key(r): view(r) for r in records}


def current_scores(scores: Iterable[Score], view: Callable[[Score], V]) -> dict[ScoreKey, V]:
    """The scores that count: the latest record per (item, candidate, metric)."""
    return latest_by(scores, score_key, view)


def current_generations(generations: Iterable[Generation]) -> dict[tuple[str, str], Generation]:
    """The answer that counts per (item, candidate): a resumed retry supersedes the earlier failure."""
    return latest_by(generations, lambda g: (g.item_id, g.candidate), lambda g: g)

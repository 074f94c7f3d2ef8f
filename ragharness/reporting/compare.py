"""comparison.json and comparison.html for an A/B comparison."""

from __future__ import annotations

from pathlib import Path

from ragharness.analysis.compare import Comparison
from ragharness.core.fileio import atomic_write_text
from ragharness.reporting.jinja import render


def render_comparison(c: Comparison) -> str:
    return render("compare.html.j2", c=c)


def write_comparison(c: Comparison, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    j, h = out / "comparison.json", out / "comparison.html"
    atomic_write_text(j, c.model_dump_json(indent=2))
    atomic_write_text(h, render_comparison(c))
    return j, h

"""What `pip install ragharness` (a wheel, not this checkout) carries: every data file the package reads at run
time (prompts, prices, templates, detector weights, the starter project) is declared as package data. A file left
out works in an editable install and fails for every user who installs the package."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_of_the_package_is_shipped_in_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["ragharness"]
    package = ROOT / "ragharness"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert "guardrails/weights/unsafe_request.json" in data  # the scan sees the files it must
    left_out = [f for f in data if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
    assert not left_out, f"add these to [tool.setuptools.package-data] in pyproject.toml: {left_out}"

"""Where the run config travels: `ragharness run` on the example, traced call by call.

    python benchmarks/wiring.py [--config goldsets/support/harness.yaml]

Every function call that receives the run config (the loaded `HarnessConfig` object itself) is a visit to the
module it is defined in (a "room"); consecutive calls in one module are one visit. Printed per visit sequence:

- rooms: distinct modules the config reaches;
- visits: visits in all;
- climbs: visits to a module of a higher layer than the one before (layers from the import-linter contract in
  pyproject.toml; shared modules outside every room count as the lowest layer);
- returns: visits to a module already visited and left before.

The same figures for the config's sections (the settings objects of `cfg.corpus`, `cfg.runner`, ...) show where
each room's own settings go; a room that receives its section rather than the whole config lowers the first set
and not the second. The run happens in a temporary copy; nothing is downloaded. Headline figures last.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

sys.path.insert(0, str(Path(__file__).parent))
from _synth import portable_copy

ROOT = Path(__file__).resolve().parents[1]


def layer_of() -> Callable[[str], int]:
    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    rank: dict[str, int] = {}
    for height, line in enumerate(reversed(layers), start=1):
        for package in line.split("|"):
            rank[package.strip()] = height

    def layer(module: str) -> int:
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in rank:
                return rank[".".join(parts[:n])]
        return 0

    return layer


def figures(visits: list[str], layer: Callable[[str], int]) -> dict[str, int]:
    climbs = sum(layer(b) > layer(a) for a, b in itertools.pairwise(visits))
    seen: set[str] = set()
    returns = 0
    for n, module in enumerate(visits):
        if module in seen and visits[n - 1] != module:
            returns += 1
        seen.add(module)
    return {"rooms": len(set(visits)), "visits": len(visits), "climbs": climbs, "returns": returns}


def trace(run: Callable[[], None], watched: list[object]) -> tuple[list[str], list[str]]:
    """Run `run` under a profiler: the modules of the calls that receive `watched[0]` (the config), and of those
    that receive one of `watched[1:]` (its sections), each as a visit sequence. The config's own methods are
    not visits."""
    whole: list[str] = []
    sections: list[str] = []

    def visit(into: list[str], module: str) -> None:
        if not into or into[-1] != module:
            into.append(module)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or not watched:
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("ragharness"):
            return
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        args = [frame.f_locals.get(name) for name in names]
        if names and names[0] in ("self", "cls") and any(args[0] is w for w in watched):
            return
        if any(a is watched[0] for a in args):
            visit(whole, module)
        if any(a is s for a in args for s in watched[1:]):
            visit(sections, module)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return whole, sections


def patch_load_config(replacement: Callable[[Any], Any]) -> Callable[[], None]:
    """Make every `load_config` the CLI can reach call `replacement`; returns the undo."""
    undo: list[tuple[Any, Any]] = []
    modules: list[tuple[str, Any]] = list(sys.modules.items())
    for name, module in modules:
        if name.startswith("ragharness") and callable(getattr(module, "load_config", None)):
            undo.append((module, module.load_config))
            module.load_config = replacement

    def restore() -> None:
        for module, original in undo:
            module.load_config = original

    return restore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="goldsets/support/harness.yaml")
    parser.add_argument("--show", action="store_true", help="print the visit sequences")
    args = parser.parse_args()
    import importlib
    import pkgutil

    from pydantic import BaseModel

    import ragharness
    from ragharness.api import load_config

    for info in pkgutil.walk_packages(ragharness.__path__, "ragharness."):  # every load_config name bound now
        if not info.name.startswith(("ragharness.testing", "ragharness.serve", "ragharness.__main__")):
            importlib.import_module(info.name)
    from ragharness.cli import app

    watched: list[object] = []

    def load_and_watch(path: Any) -> Any:
        cfg = load_config(path)
        sections = [getattr(cfg, name) for name in type(cfg).model_fields]
        watched[:] = [cfg, *[s for s in sections if isinstance(s, BaseModel)]]
        return cfg

    with tempfile.TemporaryDirectory() as tmp:
        config = portable_copy(Path(args.config).resolve(), Path(tmp))

        def run() -> None:
            try:
                app(args=["run", str(config)], standalone_mode=False)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise

        restore = patch_load_config(load_and_watch)
        try:
            whole, sections = trace(run, watched)
        finally:
            restore()
    layer = layer_of()
    if args.show:
        print("whole config:", " > ".join(m.removeprefix("ragharness.") for m in whole))
        print("sections:", " > ".join(m.removeprefix("ragharness.") for m in sections))
    for name, value in figures(sections, layer).items():
        print(f"config_sections_{name}: {value}")
    for name, value in figures(whole, layer).items():
        print(f"whole_config_{name}: {value}")


if __name__ == "__main__":
    main()

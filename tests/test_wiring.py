"""Objects are complete when constructed: no module wires a collaborator into another object by setting its
attribute afterwards (a runner's recorder, a pool's leak watch, a redactor's watch, an exception's run folder).
Each is a constructor argument, so correctness never depends on call order across modules."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import ragharness
from ragharness.core.errors import BatchWaiting, DiskFullError, RagharnessError
from ragharness.core.types import Generation
from ragharness.generation.models import ModelPool
from ragharness.generation.runner import RateLimits
from ragharness.guardrails.leaks import LeakWatch
from ragharness.pipeline.config import HarnessConfig
from ragharness.testing.provider import candidate, make_request

WIRED = {"leak_watch", "on_done", "on_progress", "on_call", "batch", "watch", "cache", "run_dir", "config"}
LEFT: set[str] = set()
"""Cases still wired afterwards (none: guardrails get their leak watch from their `GuardrailContext`). Listed so that
no new case slips in."""


def test_no_module_wires_a_collaborator_by_assignment() -> None:
    found = []
    root = Path(ragharness.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for each in (e for target in targets for e in (target.elts if isinstance(target, ast.Tuple) else [target])):
                t = each.value if isinstance(each, ast.Subscript) else each  # runner.batch[name] = ... is wiring too
                if isinstance(t, ast.Attribute) and t.attr in WIRED:
                    owner = t.value
                    where = f"{path.relative_to(root)}: {ast.unparse(t)}"
                    if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}) and where not in LEFT:
                        found.append(f"{where} = ... (line {node.lineno})")
    assert not found, "\n".join(found)


def test_a_stopped_run_names_itself_on_a_new_error_and_a_pool_starts_once(tmp_path: Path) -> None:
    waiting = BatchWaiting("2 jobs running", ["job-1", "job-2"])
    named = waiting.in_run(tmp_path / "run", "harness.yaml")
    assert (named.jobs, named.run_dir, named.config, str(named)) == (
        waiting.jobs,
        tmp_path / "run",
        "harness.yaml",
        str(waiting),
    )
    assert waiting.run_dir is None  # the original is untouched
    full = DiskFullError("no space", tmp_path / "x").in_run(tmp_path / "run", "h.yaml")
    assert (full.path, full.run_dir) == (tmp_path / "x", tmp_path / "run")
    cfg = HarnessConfig.model_validate(
        {
            "name": "t",
            "data_dir": str(tmp_path / "data"),
            "corpus": {"path": "corpus"},
            "goldset": "gold.yaml",
            "candidates": [{"name": "c", "provider": "extractive"}],
            "runner": {"base_delay_s": 0, "max_delay_s": 0},
            "base_dir": tmp_path,
        }
    )
    watch = LeakWatch(["jane.roe@corp.test"])
    pool = ModelPool(cfg.call_settings(), cache="off", leak_watch=watch)
    pool.add("judge", candidate("mock"), concurrency=1, limits=RateLimits(), where="test: judge")
    calls: list[Generation] = []
    pool.start(on_call=calls.append)
    with pytest.raises(RagharnessError, match="already started"):
        pool.start()
    request = make_request(candidate("mock").model_copy(update={"name": "judge"}), question="Is jane.roe@corp.test ok?")
    gen = asyncio.run(pool.call(request))
    asyncio.run(pool.aclose())
    assert gen is not None and calls == [gen]  # the pass's recorder got the call
    assert dict(watch.leaks) == {"request:judge": 1}  # the pool's watch saw the value in the scorer's prompt


@pytest.mark.parametrize(
    "guardrails_yaml",
    [
        "{input: [{kind: pii}]}",  # a listed guardrail: built by its factory with the context
        "{input: [], policy: {backend: local, sensitiveInformationPolicy: {piiEntities: [EMAIL]}}}",  # a backend's
    ],
)
def test_every_pii_guardrail_is_built_with_the_runs_leak_watch(tmp_path: Path, guardrails_yaml: str) -> None:
    """A value any PII guardrail of the config finds is watched by the run (its requests and files are checked for
    it) because the guardrail was constructed with the run's watch, not handed it afterwards."""
    from ragharness.pipeline.components import build_guardrails
    from ragharness.pipeline.config import load_config

    cfg = tmp_path / "harness.yaml"
    cfg.write_text(
        "name: t\ncorpus: {path: c}\ngoldset: g.yaml\ncandidates: [{name: a, provider: extractive}]\n"
        f"data_dir: {tmp_path / 'data'}\nguardrails: {guardrails_yaml}\n"
    )
    guards = build_guardrails(load_config(cfg))
    email = "dana.whitfield@northwind-mail.net"  # example.org is reserved: never watched
    assert guards.watch.hits(f"mail {email}") == 0
    out = guards.input.apply(f"My address is {email}, please reply there.", where="question", item_id="q1")
    assert email not in out.text and any(a.action == "redacted" for a in out.actions)
    assert guards.watch.hits(f"the answer quotes {email} again") == 1


def test_no_test_module_imports_another_test_module() -> None:
    """Shared test helpers live in kits (`fake_runs`, `judge_kit`, `serve_kit`, `conftest` fixtures), not in test
    modules: importing a test module runs its collection twice and couples unrelated suites."""
    tests = Path(__file__).resolve().parent
    found = []
    for file in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [f"{file.relative_to(tests)}: {n}" for n in names if n.split(".")[-1].startswith("test_")]
    assert not found, "\n".join(found)

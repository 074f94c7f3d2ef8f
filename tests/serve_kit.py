"""A run store for the review app's tests: two finished runs of one evaluation (two candidates each, the second
run with a hostile answer and a regression), one run stopped mid-way and one with a torn summary."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fake_runs import make_run
from fastapi.testclient import TestClient

from ragharness.runs.rundir import RunDir, RunManifest
from ragharness.runs.store import LocalRunStore, RunStore
from ragharness.serve.app import create_app
from ragharness.serve.state import ServeState, Settings

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
A, B = "model-alpha", "model-beta"
N = 10


def make_store(root: Path) -> LocalRunStore:
    make_run(
        root,
        "run-a",
        {A: [True] * N, B: [k % 3 != 0 for k in range(N)]},
        started_at="2026-11-01T02:00:00+00:00",
        gate="pass",
    )
    make_run(
        root,
        "run-b",
        {A: [False] + [True] * (N - 1), B: [True] * N},
        started_at="2026-11-02T02:00:00+00:00",
        answers={A: [XSS] + [f"Answer {k}. [1]" for k in range(1, N)]},
        gate="regressed",
        prompt_version=2,
    )
    stopped = root / "run-stopped"
    stopped.mkdir(parents=True)
    RunDir(stopped).write_json(
        "run.json",
        RunManifest(
            run_id="run-stopped", name="nightly-demo", started_at="2026-11-03T02:00:00+00:00", stage="prepared"
        ),
    )
    torn = make_run(root, "run-torn", {A: [True] * 3}, started_at="2026-11-04T02:00:00+00:00")
    text = torn.file("summary.json").read_text(encoding="utf-8")
    torn.file("summary.json").write_text(text[: len(text) // 2], encoding="utf-8")
    return LocalRunStore(root)


def state_for(store: RunStore, cache: Path, **settings: object) -> ServeState:
    return ServeState(store, cache, Settings(**settings), redactor=lambda text: text.replace("415-555-0100", "[PHONE]"))  # type: ignore[arg-type]


def client(state: ServeState, key: str = "", host: str = "127.0.0.1") -> TestClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return TestClient(
        create_app(state),
        base_url="http://127.0.0.1:8321",
        client=(host, 50000),
        headers=headers,
        follow_redirects=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store: Path, cache: Path, log: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """`ragharness serve` as a user starts it, in its own process on a free loopback port, once /healthz answers."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [str(Path(sys.executable).parent / "ragharness"), "serve", "--store", str(store), "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--cache-dir", str(cache), *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")

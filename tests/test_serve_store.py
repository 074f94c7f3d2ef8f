"""The review app on an S3 run store (moto), two reviewers at once against two server processes on one local
store, and a labels file a killed writer left torn."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from fake_runs import make_run
from moto import mock_aws
from serve_kit import A, B, client, make_store, start_server, state_for

from ragharness.analysis.labels import HumanLabel, calibrate
from ragharness.runs.store import LocalRunStore, S3RunStore
from ragharness.serve.auth import create_key


@pytest.fixture
def s3_store(tmp_path: Path) -> Iterator[S3RunStore]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="evals")
        store = S3RunStore("evals", "nightly", tmp_path / "s3cache", client=s3)
        local = make_store(tmp_path / "made")
        for run_id in ("run-a", "run-b", "run-torn"):
            store.save(local.open(run_id))
        # a half-written upload: only run.json arrived
        s3.put_object(Bucket="evals", Key="nightly/run-half/run.json", Body=b'{"run_id": "run-ha')
        yield store


def test_s3_store_lists_compares_labels_and_shows_damage_as_incomplete(s3_store: S3RunStore, tmp_path: Path) -> None:
    key, rec = create_key(s3_store, "reviewer")
    assert "keys.json" in json.dumps(
        [o["Key"] for o in s3_store.client.list_objects_v2(Bucket="evals", Prefix="nightly/_store/")["Contents"]]
    )
    state = state_for(s3_store, tmp_path / "cache-1")
    c = client(state, key)
    runs = {r["run_id"]: r for r in c.get("/api/runs").json()["runs"]}
    assert set(runs) == {"run-a", "run-b", "run-torn", "run-half"}
    assert runs["run-half"]["status"] == "incomplete" and "run.json" in runs["run-half"]["problem"]
    assert runs["run-torn"]["status"] == "incomplete"
    assert c.get("/").status_code == 200 and c.get("/runs/run-half").status_code == 200
    cmp = c.get("/api/compare", params={"a": "run-a", "b": "run-b", "ca": A, "cb": A})
    assert cmp.status_code == 200 and cmp.json()["comparison"]["n_items"] == 10
    assert c.get("/runs/run-b/report.html").status_code == 200
    for n in range(3):
        body = {"run_id": "run-a", "item_id": f"q{n:03d}", "candidate": B, "correctness": "incorrect"}
        assert c.post("/api/labels", json=body).status_code == 201
    keys = [
        o["Key"] for o in s3_store.client.list_objects_v2(Bucket="evals", Prefix="nightly/run-a/reviews/")["Contents"]
    ]
    assert len(keys) == 3 and all(k.startswith("nightly/run-a/reviews/labels/") for k in keys)
    # another server on the same bucket sees them, and so does calibrate on a downloaded copy
    other = state_for(s3_store, tmp_path / "cache-2")
    assert len(client(other, key).get("/api/labels", params={"run": "run-a"}).json()) == 3
    opened = s3_store.open("run-a")
    labels = [HumanLabel.model_validate_json(x) for x in opened.read_lines("labels.jsonl")]
    assert {h.reviewer for h in labels} == {rec.id}
    assert calibrate(opened.path).n_labels == 3
    # a run the nightly saves later shows up without a restart
    s3_store.save(make_run(tmp_path / "later", "run-c", {A: [True] * 4}, started_at="2026-11-09T02:00:00+00:00"))
    state.catalog.refresh(force=True)
    assert "run-c" in {r["run_id"] for r in c.get("/api/runs").json()["runs"]}


def _start(store: Path, cache: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_server(store, cache, log, "--rate-limit", "100000")


@pytest.mark.faults
def test_two_reviewers_on_two_servers_lose_no_label(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs")
    k1, r1 = create_key(store, "reviewer")
    k2, r2 = create_key(store, "reviewer")
    servers = [_start(store.root, tmp_path / f"cache-{n}", tmp_path / f"server-{n}.log") for n in (1, 2)]
    try:
        errors: list[str] = []

        def review(url: str, key: str, label: str) -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as h:
                for round_ in range(4):
                    for n in range(10):
                        for cand in (A, B):
                            body = {
                                "run_id": "run-b",
                                "item_id": f"q{n:03d}",
                                "candidate": cand,
                                "correctness": label,
                                "notes": f"round {round_}",
                            }
                            r = h.post("/api/labels", json=body)
                            if r.status_code != 201:
                                errors.append(f"{r.status_code} {r.text}")

        threads = [
            threading.Thread(target=review, args=(servers[0][1], k1, "correct")),
            threading.Thread(target=review, args=(servers[1][1], k2, "incorrect")),
            threading.Thread(target=review, args=(servers[0][1], k2, "incorrect")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        lines = (store.root / "run-b" / "labels.jsonl").read_text().splitlines()
        labels = [HumanLabel.model_validate_json(x) for x in lines]  # every line whole
        assert len(labels) == 3 * 4 * 10 * 2
        assert sum(h.reviewer == r1.id for h in labels) == 80 and sum(h.reviewer == r2.id for h in labels) == 160
        assert calibrate(store.root / "run-b").n_labels == 40  # latest per reviewer and answer: 2 x 20
        for _, url in servers:  # both servers read every label
            got = httpx.get(f"{url}/api/labels", params={"run": "run-b"}, headers={"X-API-Key": k1}, timeout=30)
            assert len(got.json()) == 240
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=20)
    for n in (1, 2):
        log = (tmp_path / f"server-{n}.log").read_text()
        assert k1 not in log and k2 not in log and "round 3" not in log


@pytest.mark.faults
def test_a_torn_label_line_from_a_killed_writer_is_cut_before_the_next_append(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs")
    state = state_for(store, tmp_path / "cache", local=True)
    labels = store.root / "run-a" / "labels.jsonl"
    good = HumanLabel(item_id="q000", candidate=A, correctness="correct", reviewer="x", at="t").model_dump_json()
    labels.write_text(good + "\n" + '{"item_id": "q001", "cand')  # the writer died mid-line
    c = client(state)
    assert len(c.get("/api/labels", params={"run": "run-a"}).json()) == 1  # the torn tail is not read
    body = {"run_id": "run-a", "item_id": "q002", "candidate": A, "correctness": "incorrect"}
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/runs/run-a").text).group(1)  # type: ignore[union-attr]
    assert c.post("/api/labels", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    lines = labels.read_text().splitlines()
    assert len(lines) == 2 and all(HumanLabel.model_validate_json(x) for x in lines)


def test_store_folder_must_exist(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ragharness.cli import app

    res = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "nope")])
    assert res.exit_code == 3 and "no such folder" in res.output
    LocalRunStore(tmp_path)  # an empty folder is fine: keys can be created before the first run
    res = CliRunner().invoke(app, ["serve", "--store", str(tmp_path), "--host", "0.0.0.0"])
    assert res.exit_code == 3 and "keys.json is missing" in res.output and "keys create" in res.output

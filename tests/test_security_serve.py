"""The review app under a hostile reviewer and an unlucky operator, over real HTTP against `ragharness serve` running
in its own process: no admin without a key, key changes that survive concurrency, no link out of the store, no
hashing for refused keys, blind labels that are blind, and reviewers shown by name."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from serve_kit import A, B, client, make_store, start_server, state_for
from typer.testing import CliRunner

from ragharness.cli import app
from ragharness.runs.store import LocalRunStore, S3RunStore
from ragharness.serve import auth
from ragharness.serve.auth import create_key, read_keys, revoke_key

pytestmark = pytest.mark.security


@pytest.fixture
def store(tmp_path: Path) -> LocalRunStore:
    return make_store(tmp_path / "runs")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[..., str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(store: LocalRunStore, *args: str) -> str:
        proc, url = start_server(store.root, tmp_path / f"cache-{len(procs)}", tmp_path / f"log-{len(procs)}", *args)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def _until(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll until `check()` holds (the key ring re-reads the store every 5 s); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def test_no_key_no_local_mode_behind_a_proxy(store: LocalRunStore) -> None:
    """The documented proxy set-up without keys used to make every same-host request admin; now it cannot start."""
    res = CliRunner().invoke(app, ["serve", "--store", str(store.root), "--allowed-host", "evals.example.internal"])
    assert res.exit_code == 3 and "keys create" in res.output and "--local" in res.output
    for args in (["--local", "--allowed-host", "evals.example.internal"], ["--local", "--host", "0.0.0.0"]):
        res = CliRunner().invoke(app, ["serve", "--store", str(store.root), *args])
        assert res.exit_code == 3 and "--local serves this machine only" in res.output, args


def test_a_proxy_host_with_keys_gets_no_admin(store: LocalRunStore, running: Callable[..., str]) -> None:
    create_key(store, "viewer")
    url = running(store, "--allowed-host", "evals.example.internal")
    through_proxy = {"Host": "evals.example.internal"}
    assert httpx.get(f"{url}/api/me", headers=through_proxy).status_code == 401
    assert httpx.post(f"{url}/runs/run-a/pin", headers=through_proxy).status_code == 401
    assert httpx.get(f"{url}/api/me").status_code == 401  # nor from this machine


def test_revoking_the_last_key_or_losing_the_key_file_refuses_everyone(
    store: LocalRunStore, running: Callable[..., str]
) -> None:
    key, record = create_key(store, "admin")
    url = running(store)
    me = f"{url}/api/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {key}"}).json()["role"] == "admin"
    assert httpx.get(me).status_code == 401
    revoke_key(store, record.id)
    _until(lambda: httpx.get(me, headers={"Authorization": f"Bearer {key}"}).status_code == 401, "revocation")
    assert httpx.get(me).status_code == 401 and httpx.get(f"{url}/").status_code == 401  # no local admin
    # a new key, then the key file disappears while the server runs
    key2, _ = create_key(store, "admin")
    _until(lambda: httpx.get(me, headers={"Authorization": f"Bearer {key2}"}).status_code == 200, "new key")
    (store.root / "_store" / "keys.json").unlink()
    _until(lambda: httpx.get(me, headers={"Authorization": f"Bearer {key2}"}).status_code == 401, "lost key file")
    assert httpx.get(me).status_code == 401
    # an unreadable key file refuses too (not the last good keys kept in memory)
    (store.root / "_store" / "keys.json").write_text("{not json")
    time.sleep(0.1)
    assert httpx.get(me).status_code == 401


def test_local_mode_is_loopback_only_and_stays_what_it_was(store: LocalRunStore, running: Callable[..., str]) -> None:
    url = running(store, "--local")
    assert httpx.get(f"{url}/api/me").json()["role"] == "admin"
    assert httpx.get(f"{url}/api/me", headers={"Host": "evals.example.internal"}).status_code == 400  # no proxy


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "ragharness"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_concurrent_key_changes_lose_nothing(store: LocalRunStore) -> None:
    first = [create_key(store, "viewer")[1].id for _ in range(6)]
    loc = str(store.root)
    procs = [_cli("keys", "create", "--role", "viewer", "--store", loc) for _ in range(6)]
    procs += [_cli("keys", "revoke", key_id, "--store", loc) for key_id in first]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode() for o in outs]
    printed = {o[0].decode().strip().splitlines()[-1] for o in outs[:6]}
    keys = read_keys(store).keys
    assert len(keys) == 12 and all(k.revoked for k in keys if k.id in first)
    assert {k.id for k in keys if not k.revoked} == {p.split("_")[1] for p in printed}


def test_key_changes_on_s3_are_conditional_writes(tmp_path: Path) -> None:
    """Another writer changes the key file between this writer's read and write: the write is refused by S3's
    condition (If-Match / If-None-Match), read again and redone, so both changes survive."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="evals")
        s3_store = S3RunStore("evals", "nightly", tmp_path / "cache", client=s3)
        real = s3_store.update_meta
        interleaved: list[str] = []

        def racing(name: str, change: Callable[[str | None], str]) -> str:
            def first_sees_a_rival(text: str | None) -> str:
                if not interleaved:  # the rival writes after our read, before our write
                    interleaved.append(create_key_plain(s3_store))
                return change(text)

            return real(name, first_sees_a_rival)

        def create_key_plain(target: S3RunStore) -> str:
            target.update_meta = real  # type: ignore[method-assign]  # the rival is an ordinary writer
            try:
                return create_key(target, "viewer")[1].id
            finally:
                target.update_meta = racing  # type: ignore[method-assign]

        s3_store.update_meta = racing  # type: ignore[method-assign]
        _, mine = create_key(s3_store, "admin")
        ids = {k.id for k in read_keys(s3_store).keys}
        assert ids == {mine.id, interleaved[0]}
        s3_store.update_meta = real  # type: ignore[method-assign]
        revoke_key(s3_store, mine.id)
        assert [k.revoked for k in read_keys(s3_store).keys if k.id == mine.id] == [True]


def test_links_out_of_the_store_are_refused(store: LocalRunStore, tmp_path: Path, running: Callable[..., str]) -> None:
    outside = make_store(tmp_path / "elsewhere")
    (store.root / "run-linked").symlink_to(outside.root / "run-a", target_is_directory=True)
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours\n")
    labels = store.root / "run-b" / "labels.jsonl"
    labels.symlink_to(secret)
    assert "run-linked" not in store.list_runs()
    key, _ = create_key(store, "reviewer")
    url = running(store)
    h = {"Authorization": f"Bearer {key}"}
    listed = httpx.get(f"{url}/api/runs", headers=h).json()["runs"]
    assert "run-linked" not in {r["run_id"] for r in listed}
    assert httpx.get(f"{url}/runs/run-linked", headers=h).status_code in (400, 404)
    body = {"run_id": "run-b", "item_id": "q001", "candidate": A, "correctness": "incorrect"}
    assert httpx.post(f"{url}/api/labels", json=body, headers=h).status_code >= 400
    assert secret.read_text() == "not yours\n"


def test_wrong_keys_are_limited_before_hashing(
    store: LocalRunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, record = create_key(store, "viewer")
    hashes: list[int] = []
    real = auth._hash

    def counted(secret: str, salt: bytes) -> str:
        hashes.append(1)
        return real(secret, salt)

    monkeypatch.setattr(auth, "_hash", counted)
    state = state_for(store, tmp_path / "cache")
    state.login_limiter = auth.RateLimiter(0, burst=10)  # no refill during the test: the count is exact under load
    codes = [client(state, f"rhk_{record.id}_guess{n}").get("/api/me").status_code for n in range(40)]
    assert codes.count(401) == 10 and codes.count(429) == 30  # the burst, then 429 with no hash
    assert len(hashes) == 10
    before = len(hashes)
    state.login_limiter = auth.RateLimiter(6000, burst=1000)
    for _ in range(20):  # one wrong key again and again: hashed once
        assert client(state, f"rhk_{record.id}_same").get("/api/me").status_code == 401
    assert len(hashes) == before + 1


def test_blind_row_ids_cannot_be_computed_and_reviewers_are_named(store: LocalRunStore, tmp_path: Path) -> None:
    key, record = create_key(store, "reviewer", name="ana")
    state = state_for(store, tmp_path / "cache")
    c = client(state, key)
    page = c.get("/runs/run-a/review/q001", params={"blind": "1"})
    assert page.status_code == 200, page.text
    ids = re.findall(r'name="row_\d+" value="([0-9a-f]+)"', page.text)
    assert len(ids) == 2
    for cand in (A, B):  # the old unsalted id, or any prefix of it
        guess = hashlib.sha256(f"run-a|q001|{cand}".encode()).hexdigest()
        assert not any(guess.startswith(i) for i in ids)
    again = state_for(store, tmp_path / "cache-2")  # the store's secret: the same ids on another server
    other = client(again, key).get("/runs/run-a/review/q001", params={"blind": "1"}).text
    assert set(re.findall(r'name="row_\d+" value="([0-9a-f]+)"', other)) == set(ids)
    form = {"n": "2", "blind": "1", "row_0": ids[0], "correctness_0": "correct", "row_1": ids[1]}
    assert c.post("/runs/run-a/review/q001", data=form).status_code == 303
    labels = c.get("/api/labels", params={"run": "run-a"}).json()
    assert labels and {h["reviewer"] for h in labels} == {"ana"}
    assert record.id not in c.get("/api/labels", params={"run": "run-a"}).text

"""`ragharness serve` (the review app) and `ragharness keys` (its API keys)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragharness.cli._app import _Typer, app, console, err_console
from ragharness.core.errors import ConfigError
from ragharness.runs.store import LocalRunStore, RunStore, open_run_store

keys_app = _Typer(help="API keys of the review app (stored hashed in the run store).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

StoreOpt = Annotated[str, typer.Option("--store", help="Run store: a folder or s3://bucket/prefix.")]


def _cache_dir(location: str, given: Path | None) -> Path:
    if given is not None:
        return given
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ragharness" / "serve" / hashlib.sha256(location.encode()).hexdigest()[:12]


def _open_store(location: str, cache: Path) -> RunStore:
    if not location.startswith("s3://"):
        root = Path(location)
        if not root.is_dir():
            raise ConfigError(f"--store {location}: no such folder; give the output_dir your runs are written to")
        return LocalRunStore(root)
    return open_run_store(location, cache / "s3")


@app.command()
def serve(
    store: StoreOpt = "runs",
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 serves the network (needs keys).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8321,
    rate_limit: Annotated[int, typer.Option(help="Requests a minute per key (bursts of half of it).")] = 600,
    read_only: Annotated[bool, typer.Option("--read-only", help="No labels, votes or pins (viewers only).")] = False,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="Host name the app may be reached by (repeatable), e.g. behind a proxy.")
    ] = None,
    secure_cookies: Annotated[bool, typer.Option(help="Mark the session cookie Secure (behind HTTPS).")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Local cache (history index, S3 downloads).")] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="No keys: this machine only (loopback bind, no --allowed-host), as one local admin."
        ),
    ] = False,
) -> None:
    """The review app: runs, compare, trends, item view, human labels and preference votes, JSON API."""
    import uvicorn

    from ragharness.serve.app import create_app
    from ragharness.serve.state import ServeState, Settings

    cache = _cache_dir(store, cache_dir)
    run_store = _open_store(store, cache)
    settings = Settings(
        host=host,
        rate_per_minute=rate_limit,
        read_only=read_only,
        allowed_hosts=list(allowed_host or []),
        secure_cookies=secure_cookies,
        local=local,
    )
    state = ServeState(run_store, cache, settings)
    if not local and state.keys.empty:
        why = state.keys.problem or f"{run_store.location} has no active API key"
        raise ConfigError(
            f"{why}: the review app refuses everyone without a key. Create one with "
            f"`ragharness keys create --role admin --store {store}`, or serve this machine only with --local"
        )
    state.catalog.refresh(force=True)
    n = len(state.catalog.entries())
    shown = f"[{host}]" if ":" in host else host
    console.print(f"ragharness review app: http://{shown}:{port}/  ({n} runs in {run_store.location})", markup=False)
    if local:
        console.print("local mode (--local): this machine only, every client here is a local admin", markup=False)
    console.print("stop with Ctrl-C", markup=False)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer (read), reviewer (+ label, vote) or admin (+ pin baselines).")],
    store: StoreOpt = "runs",
    name: Annotated[str, typer.Option(help="Who the key is for (shown in the app).")] = "",
    cache_dir: Annotated[Path | None, typer.Option(help="Local cache for an S3 store.")] = None,
) -> None:
    """Create a key and print it once; only its scrypt hash is stored."""
    from ragharness.serve.auth import create_key

    run_store = _open_store(store, _cache_dir(store, cache_dir))
    key, record = create_key(run_store, role, name)  # type: ignore[arg-type]  # create_key checks the role
    err_console.print(
        f"created {record.role} key {record.id}{f' for {name}' if name else ''}; it is shown once, store it now:",
        markup=False,
    )
    typer.echo(key)


@keys_app.command("list")
def keys_list(
    store: StoreOpt = "runs",
    cache_dir: Annotated[Path | None, typer.Option(help="Local cache for an S3 store.")] = None,
) -> None:
    """Key ids, names, roles and dates (never the keys)."""
    from ragharness.serve.auth import read_keys

    run_store = _open_store(store, _cache_dir(store, cache_dir))
    table = Table(title=f"API keys of {run_store.location}")
    for col in ("id", "name", "role", "created", "state"):
        table.add_column(col)
    for k in read_keys(run_store).keys:
        table.add_row(k.id, k.name, k.role, k.created_at, "revoked" if k.revoked else "active")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")],
    store: StoreOpt = "runs",
    cache_dir: Annotated[Path | None, typer.Option(help="Local cache for an S3 store.")] = None,
) -> None:
    """Revoke a key; a running app refuses it within 5 seconds."""
    from ragharness.serve.auth import revoke_key

    run_store = _open_store(store, _cache_dir(store, cache_dir))
    k = revoke_key(run_store, key_id)
    console.print(f"revoked {k.role} key {k.id}", markup=False)

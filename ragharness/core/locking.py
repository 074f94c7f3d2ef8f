"""Exclusive process locks on shared state (an ingest's data_dir, a nightly run).

Built on filelock's kernel locks (flock): the kernel releases a lock when its holder dies, even by SIGKILL, so
a lock can never go stale. Beside the lock, an owner file says who holds it (pid, host, since when, what for),
which is what the error shows to the process that has to wait.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ragharness.core.errors import LockedError
from ragharness.core.fileio import atomic_write_text


def _owner(owner_file: Path, wait_s: float = 2.0) -> str:
    """Who holds the lock. The holder writes its owner file just after taking the lock, so a process that lost the
    race by a hair may look before it exists: it looks again for up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(owner_file.read_text(encoding="utf-8"))
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
            return f"pid {info['pid']} on {info['host']}, {info['what']}, since {since}"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return "owner unknown"
            time.sleep(0.05)


@contextmanager
def exclusive(
    lock_file: Path, what: str, *, who: str = "another process", hint: str = "wait for it to finish"
) -> Iterator[None]:
    """Hold `lock_file` exclusively for the block, or raise LockedError at once naming the holder."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    owner_file = lock_file.with_name(lock_file.name + ".owner")
    lock = FileLock(str(lock_file), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout as exc:
        raise LockedError(f"{lock_file}: {who} holds the lock ({_owner(owner_file)}); {hint}") from exc
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "what": what}
        atomic_write_text(owner_file, json.dumps(info))
        yield
    finally:
        lock.release()

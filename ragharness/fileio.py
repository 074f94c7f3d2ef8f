"""Writes that survive kills and full disks: atomic replace (temp file + fsync + rename), and a full disk turned
into a DiskFullError that names the path and the space left."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from ragharness.errors import DiskFullError


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path: Path) -> DiskFullError:
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
        space = f"{free:,} bytes free"
    except OSError:
        space = "free space unknown"
    return DiskFullError(
        f"{path}: no space left on the device ({space}); free some space, then resume the run", path=path
    )


def guard_disk(path: Path, write: Callable[[], None]) -> None:
    """Run a write; a full disk becomes a DiskFullError naming the path and the free space."""
    try:
        write()
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path) from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Temp file + fsync + rename: readers see the old file or the whole new one, never a torn one. A failed write
    (disk full) leaves the old file in place and no temp file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")

    def write() -> None:
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    guard_disk(path, write)

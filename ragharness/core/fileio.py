"""Writes that survive kills and full disks: atomic replace (temp file + fsync + rename), and a full disk turned
into a DiskFullError that names the path and the space left."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ragharness.core.errors import DiskFullError


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


@contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """A text file handle whose content replaces `path` when the block ends: temp file, fsync, rename. Readers
    see the old file or the whole new one, never a torn one; on any failure (a full disk becomes DiskFullError)
    the temp file goes and the old file stays."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(path) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_writer(path) as fh:
        fh.write(text)


def cut_torn_tail(file: Path) -> None:
    """Cut a last line a killed writer left unfinished, so the next append does not glue a record to it."""
    if not file.is_file() or file.stat().st_size == 0:
        return
    with file.open("rb+") as fh:
        end = fh.seek(0, os.SEEK_END)
        fh.seek(end - 1)
        if fh.read(1) == b"\n":
            return
        pos, cut = end, 0
        while pos > 0:  # scan back in blocks for the last complete line
            step = min(1 << 16, pos)
            fh.seek(pos - step)
            found = fh.read(step).rfind(b"\n")
            if found >= 0:
                cut = pos - step + found + 1
                break
            pos -= step
        fh.truncate(cut)


def append_durable(file: Path, line: str) -> None:
    """Append one line under a lock every process honours, cutting a torn tail first, fsynced before returning:
    a line acknowledged is a line kept (journals, review records)."""
    from filelock import FileLock

    def write() -> None:
        with FileLock(str(file.with_name(f".{file.name}.lock")), timeout=30):
            cut_torn_tail(file)
            with file.open("a", encoding="utf-8") as fh:
                fh.write(line.strip() + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    guard_disk(file, write)


def complete_lines(file: Path) -> Iterator[str]:
    """The complete, non-blank lines of a file, streamed (a torn last line, a write in progress, is left out)."""
    if not file.is_file():
        return
    with file.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.endswith("\n") and line.strip():
                yield line

"""Give freed memory back to the operating system between the batches of a large run.

glibc's allocator keeps memory freed by Python, ONNX Runtime and LanceDB in its arenas; across thousands of items
that fragmentation, not live data, is much of the growth (5,000 items of benchmarks/scale.py's set: peak RSS
1,008 MiB without trimming, 942 MiB with it). `trim()` calls `malloc_trim(0)` where glibc provides it and does
nothing elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

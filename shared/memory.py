"""The process's memory as the operating system sees it, and giving glibc's free pages back to it.

A service's resident memory rose in steps at each campaign launch and never came down (the soak, issue 12): the
burst's short-lived buffers (fetched Kafka records, record values and envelopes over 512 bytes, asyncpg's row
buffers) come from glibc's heap, and once freed they stay there as holes between live blocks; glibc only returns
the top of its heap by itself. `malloc_trim(0)` also returns the whole free pages inside it (madvise), which is
what `release_free_memory` asks for, every `memory_trim_seconds` (see `shared.memdebug` for the measurement).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from typing import Any

log = logging.getLogger(__name__)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
        )
    ]  # fmt: skip


def _load_libc() -> Any:
    with contextlib.suppress(OSError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        if hasattr(libc, "malloc_trim") and hasattr(libc, "mallinfo2"):  # glibc ≥ 2.33
            libc.mallinfo2.restype = _MallInfo2
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            return libc
    return None  # musl, macOS: nothing to trim this way


_LIBC = _load_libc()


def rollup(pid: int | str = "self") -> dict[str, int]:
    """kB figures of /proc/<pid>/smaps_rollup (Rss, Anonymous, ...); empty where there is no such file."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f.read().splitlines()[1:]:
                key, _, value = line.partition(":")
                out[key.strip()] = int(value.split()[0])
    return out


def glibc_heap() -> dict[str, int]:
    """glibc malloc's view in kB: in use, free but still held by its arenas, mmapped blocks; empty elsewhere."""
    if _LIBC is None:
        return {}
    m = _LIBC.mallinfo2()
    return {
        "arena_kb": m.arena // 1024,
        "in_use_kb": m.uordblks // 1024,
        "free_kb": m.fordblks // 1024,
        "mmap_kb": m.hblkhd // 1024,
    }


def release_free_memory() -> bool:
    """Give glibc's free pages back to the operating system; False where the C library is not glibc."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True


async def trim_regularly(interval_seconds: float) -> None:
    """`release_free_memory` every `interval_seconds` (a few milliseconds each) until cancelled; 0 = never."""
    if interval_seconds <= 0 or _LIBC is None:
        return
    while True:
        await asyncio.sleep(interval_seconds)
        started = time.perf_counter()
        release_free_memory()
        log.debug("malloc_trim took %.1f ms", 1000 * (time.perf_counter() - started))

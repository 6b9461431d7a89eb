"""Memory diagnostics on demand, off by default: `HSS_MEMORY_DEBUG=1` (or `=trace[:frames]`) then `kill -USR1 <pid>`.

Each SIGUSR1 writes one JSON line to stderr (the service's log) telling where the process's resident memory is:
RSS split anonymous / file-backed, glibc's heap (`mallinfo2`: bytes in use, free but held, mmapped), the
interpreter's own allocator (pymalloc arenas), the garbage collector's generations, the most numerous object types,
what a full collection then finds unreachable and what `malloc_trim(0)` then gives back; with `trace`,
tracemalloc's largest holders and what grew most since the previous signal. `bench/soak.py --memory-debug` uses it
to tell a leak (objects that stay reachable) from garbage left for the collector and from allocator fragmentation
(freed memory malloc keeps).
"""

from __future__ import annotations

import gc
import os
import re
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from typing import Any

import orjson

from shared.memory import glibc_heap, release_free_memory, rollup

VARIABLE = "HSS_MEMORY_DEBUG"


def pymalloc_arenas() -> dict[str, int]:
    """The interpreter's small-object allocator: arenas allocated now and at most (1 MiB each on 3.11).

    `sys._debugmallocstats` writes to the C-level stderr, so file descriptor 2 points at a temporary file meanwhile.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as tmp:
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    out = {}
    for key, label in (
        ("arenas_now", "arenas allocated current"),
        ("arenas_peak", "arenas highwater mark"),
        ("allocated_kb", "bytes in allocated blocks"),  # live small objects
        ("available_kb", "bytes in available blocks"),  # free blocks inside pools in use: fragmentation
    ):
        if m := re.search(rf"# {label}\s*=\s*([\d,]+)", text):
            value = int(m.group(1).replace(",", ""))
            out[key] = value // 1024 if key.endswith("_kb") else value
    return out


class Dumper:
    """The SIGUSR1 handler: one JSON line per signal."""

    def __init__(self, service: str, frames: int) -> None:
        self.service, self.frames = service, frames
        self.previous: tracemalloc.Snapshot | None = None
        self.n = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.n += 1
        started = time.perf_counter()
        doc: dict[str, Any] = {"memory_debug": self.n, "service": self.service, "pid": os.getpid()}
        r = rollup()
        doc["rss_kb"], doc["anon_kb"] = r.get("Rss"), r.get("Anonymous")
        doc["glibc"] = glibc_heap()
        doc["pymalloc"] = pymalloc_arenas()
        doc["gc_counts"], doc["gc_threshold"] = gc.get_count(), gc.get_threshold()
        doc["gc_generations"] = [len(gc.get_objects(g)) for g in range(3)]
        doc["gc_frozen"] = gc.get_freeze_count()
        doc["gc_collections"] = [s["collections"] for s in gc.get_stats()]
        doc["top_types"] = Counter(type(o).__name__ for o in gc.get_objects()).most_common(15)
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot().filter_traces(
                [
                    tracemalloc.Filter(False, tracemalloc.__file__),
                    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
                ]
            )
            doc["traced_kb"] = tracemalloc.get_traced_memory()[0] // 1024
            doc["top"] = [f"{s.size // 1024} KiB {s.count} {s.traceback}" for s in snap.statistics("lineno")[:15]]
            if self.previous is not None:
                doc["grown"] = [
                    f"{s.size_diff // 1024:+} KiB {s.count_diff:+} {s.traceback}"
                    for s in snap.compare_to(self.previous, "lineno")[:15]
                ]
            self.previous = snap
        doc["unreachable_found_by_full_collection"] = gc.collect()
        r = rollup()
        doc["after_collection"] = {"rss_kb": r.get("Rss"), "anon_kb": r.get("Anonymous"), "glibc": glibc_heap()}
        if release_free_memory():  # what glibc gives back when asked: its free pages (fragmentation), not live data
            r = rollup()
            doc["after_trim"] = {"rss_kb": r.get("Rss"), "anon_kb": r.get("Anonymous"), "glibc": glibc_heap()}
        doc["took_ms"] = round(1000 * (time.perf_counter() - started))
        sys.stderr.write(orjson.dumps(doc, default=str).decode() + "\n")
        sys.stderr.flush()


def install(service: str) -> None:
    """Install the SIGUSR1 dump when HSS_MEMORY_DEBUG is set (`1`, or `trace` / `trace:<frames>` for tracemalloc)."""
    value = os.environ.get(VARIABLE, "").strip().lower()
    if not value or value in ("0", "false", "off"):
        return
    frames = 0
    if value.startswith("trace"):
        frames = int(value.partition(":")[2] or 1)
        tracemalloc.start(frames)
    signal.signal(signal.SIGUSR1, Dumper(service, frames))

"""Giving glibc's free pages back (shared.memory): the soak's RSS steps were freed memory glibc kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shared import memory

ROOT = Path(__file__).resolve().parents[3]

# A burst of 1 kB buffers (above pymalloc's 512 bytes, so from glibc's heap, like fetched record values), of which
# one in 64 outlives the burst: the heap's top stays in use, so glibc returns nothing by itself.
SCRIPT = """
import orjson
from shared import memory
burst = [bytes(1000) for _ in range(120_000)]
kept = burst[::64]
del burst
before = memory.rollup()["Rss"], memory.glibc_heap()
trimmed = memory.release_free_memory()
after = memory.rollup()["Rss"], memory.glibc_heap()
print(orjson.dumps({"before": before, "after": after, "trimmed": trimmed, "kept": len(kept)}).decode())
"""


@pytest.mark.skipif(memory.glibc_heap() == {}, reason="the C library is not glibc")
def test_freed_burst_memory_goes_back_to_the_system_only_when_trimmed() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONMALLOC", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    (rss_before, heap_before), (rss_after, heap_after) = out["before"], out["after"]
    assert out["trimmed"] is True
    # About 115 MB of the burst is free but still resident; trimming returns most of it, the kept buffers stay.
    assert heap_before["free_kb"] > 80_000
    assert rss_before - rss_after > 60_000
    assert heap_after["in_use_kb"] >= out["kept"]  # 1,875 kept buffers of 1 kB are still there


async def test_trimming_is_off_with_a_zero_interval() -> None:
    await memory.trim_regularly(0)  # returns at once instead of looping forever

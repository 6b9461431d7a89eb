"""The memory dump on SIGUSR1 (shared.memdebug): off unless HSS_MEMORY_DEBUG is set; one JSON line per signal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[3]

# Holds 20,000 objects in reference cycles that nothing reaches, then asks for two dumps.
SCRIPT = """
import gc, os, signal
from shared import memdebug
gc.disable()
memdebug.install("probe")
class Node:
    pass
for _ in range(20_000):
    n = Node()
    n.me = n
del n
os.kill(os.getpid(), signal.SIGUSR1)
held = [bytes(1000) for _ in range(5000)]
os.kill(os.getpid(), signal.SIGUSR1)
print("done", flush=True)
"""


def run(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HSS_MEMORY_DEBUG"}
    if value is not None:
        env["HSS_MEMORY_DEBUG"] = value
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)


def test_off_by_default_the_signal_keeps_its_default_action() -> None:
    done = run(None)
    assert done.returncode == -10  # SIGUSR1's default action: the process is terminated, nothing dumped
    assert "memory_debug" not in done.stderr


def dumps(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    return [orjson.loads(line) for line in done.stderr.splitlines() if line.startswith('{"memory_debug"')]


def test_each_signal_dumps_where_the_memory_is() -> None:
    first, second = dumps(run("1"))
    assert first["service"] == "probe" and first["rss_kb"] > 0 and first["anon_kb"] > 0
    # The cycles are garbage only a collection frees (the collector is off here): the dump's full collection does.
    assert first["unreachable_found_by_full_collection"] >= 20_000
    assert second["unreachable_found_by_full_collection"] < 1_000
    assert first["glibc"]["in_use_kb"] > 0 and "free_kb" in first["glibc"]
    assert first["pymalloc"]["arenas_now"] > 0
    assert "after_trim" in first and "after_collection" in first
    assert "grown" not in second  # no tracing unless asked


def test_with_tracing_the_next_dump_names_what_grew() -> None:
    first, second = dumps(run("trace:1"))
    assert "grown" not in first
    grown = second["grown"]
    assert isinstance(grown, list)
    # The 5,000 kB held between the two signals, attributed to the line that allocated them.
    assert any("<string>:" in line and int(line.split()[0]) >= 4_000 for line in grown)

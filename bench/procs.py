"""CPU and memory of processes from /proc, for the benches' per-event costs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def proc_stat(pid: int) -> tuple[int, float]:
    """(VmRSS kB, CPU seconds) of a process."""
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    fields = _stat(pid)
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (index 1 = ppid, 11/12 = utime/stime)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live children and the children it has reaped (PostgreSQL's backends)."""
    own = sum(int(x) for x in _stat(pid)[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime
    return own + sum(children_cpu(pid).values())


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of a process, by thread id (the main thread's id is the process id)."""
    clk = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for d in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError):
            f = _stat(f"{pid}/task/{d.name}")
            out[int(d.name)] = (int(f[11]) + int(f[12])) / clk
    return out


def children_cpu(parent: int) -> dict[int, float]:
    """CPU seconds of each live child of a process, by pid (PostgreSQL's backends and workers under its postmaster)."""
    clk = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                f = _stat(d.name)
                if int(f[1]) == parent:  # ppid
                    out[int(d.name)] = (int(f[11]) + int(f[12])) / clk
    return out

"""Cost as the city grows: `bench/campaign.py` at several scales, one table of what each visit costs.

    .venv/bin/python bench/scale.py [--scales 0.25,0.5,1,2] [--log-dir DIR] [-- <more campaign.py options>]

Runs `bench/campaign.py --scale S` once per scale, each in its own process (its own services, schemas and topics,
dropped afterwards), shows its output as it goes and keeps it in `<log-dir>/campaign-<S>.txt`, then prints per
scale: CPU milliseconds per visit for each service and for PostgreSQL and Kafka (all their processes) over the
campaign window (PostgreSQL's also by what its processes served: each service's backends, each database's
autovacuum), the time reporting took to refresh after its consumers had applied the last event, the
finding→case p99, the peak resident memory of each service process, and the raw PostgreSQL COPY rate of the
same run (the machine's yardstick: divide by it to compare runs on a busier machine). Ends with how each figure
moved from the smallest to the largest scale (CPU per visit should stay flat, memory grow sub-linearly).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("committees", "visits", "outreach", "reporting")
INFRA = ("postgres", "kafka")

STORED = re.compile(r"^scale [\d.]+: ([\d,]+) visits stored, (\d+) rejected, (\d+) failed requests", re.M)
ACCEPTED = re.compile(r"^accepted \(HTTP\), first → last answer: ([\d,]+) visits/s over ([\d.]+)s", re.M)
CAUGHT_UP = re.compile(
    r"outreach caught up ([\d.]+)s, reporting caught up ([\d.]+)s \(its consumers had no lag at ([\d.]+)s\): "
    r"wall ([\d.]+)s",
)
P99 = re.compile(r"^finding → case .*?: p50 (\d+) ms, p99 (\d+) ms", re.M)
SERVICE_LINE = re.compile(r"^  (\w+)\s+(\d+) MB /\s+(\d+) MB\s+CPU\s+([\d.]+)s", re.M)
INFRA_LINE = re.compile(r"^  (\w+)\s+\(all its processes\)\s+CPU\s+([\d.]+)s", re.M)
PG_SERVED = re.compile(r"^    (\S.*?)\s+CPU\s+([\d.]+)s = [\d.]+ ms per visit$", re.M)  # postgres, by what it served
COPY = re.compile(r"^raw PostgreSQL COPY of the same [\d,]+ visit rows: ([\d,]+) rows/s", re.M)
DIRECTORY = re.compile(r"import (\d+)s, the services consumed the directory (\d+)s later")
LAUNCH = re.compile(r"launch \+ assignments read (\d+)s, their events consumed (\d+)s later")
LOAD = re.compile(r"load average at start ([\d.]+), at the end of the campaign ([\d.]+)")


@dataclass
class Run:
    """The figures of one campaign run, parsed from its output."""

    scale: float
    seconds: float = 0.0
    visits: int = 0
    failed: int = 0
    accepted: float = 0.0
    wall: float = 0.0
    refresh: float = 0.0  # reporting caught up − its consumers had no lag
    p50: float = 0.0
    p99: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds in the campaign window
    pg_served: dict[str, float] = field(default_factory=dict)  # PostgreSQL's of them, by what its processes served
    peak_mb: dict[str, int] = field(default_factory=dict)  # VmHWM of each service process over the run
    copy_rate: float = 0.0
    import_s: float = 0.0
    directory_s: float = 0.0
    launch_s: float = 0.0
    launch_consumed_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    loads: list[float] = field(default_factory=list)  # the 1-minute load average, sampled every minute of the run
    complete: bool = False

    def cpu_ms_per_visit(self, name: str) -> float:
        return 1000 * self.cpu.get(name, 0.0) / max(self.visits, 1)


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def parse(scale: float, text: str) -> Run:
    """The figures of a campaign.py output (`complete` is False when the run ended before printing them all)."""
    run = Run(scale)
    if m := STORED.search(text):
        run.visits, run.failed = int(_num(m[1])), int(m[3])
    if m := ACCEPTED.search(text):
        run.accepted = _num(m[1])
    if m := CAUGHT_UP.search(text):
        run.wall, run.refresh = float(m[4]), float(m[2]) - float(m[3])
    if m := P99.search(text):
        run.p50, run.p99 = float(m[1]), float(m[2])
    for m in SERVICE_LINE.finditer(text):
        if m[1] in SERVICES:
            run.peak_mb[m[1]], run.cpu[m[1]] = int(m[3]), float(m[4])
    for m in INFRA_LINE.finditer(text):
        run.cpu[m[1]] = float(m[2])
    for m in PG_SERVED.finditer(text):
        run.pg_served[m[1]] = float(m[2])
    if m := COPY.search(text):
        run.copy_rate = _num(m[1])
    if m := DIRECTORY.search(text):
        run.import_s, run.directory_s = float(m[1]), float(m[2])
    if m := LAUNCH.search(text):
        run.launch_s, run.launch_consumed_s = float(m[1]), float(m[2])
    if m := LOAD.search(text):
        run.load = (float(m[1]), float(m[2]))
    run.complete = bool(run.visits and run.wall and run.copy_rate and len(run.peak_mb) == len(SERVICES))
    return run


def campaign(scale: float, extra: list[str], log: Path) -> Run:
    """One campaign.py run at `scale`, its output shown and written to `log`."""
    cmd = [sys.executable, str(ROOT / "bench" / "campaign.py"), "--scale", str(scale), *extra]
    print(f"\n=== {' '.join(cmd[1:])}  (output also in {log})", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    loads: list[float] = []
    stop = threading.Event()

    def sample_load() -> None:  # other work on a shared machine: the load beside each minute of the run
        while not stop.wait(0 if not loads else 60):
            loads.append(os.getloadavg()[0])
            print(
                f"--- {time.strftime('%H:%M:%S')} +{time.monotonic() - started:.0f}s load {loads[-1]:.1f}", flush=True
            )

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    with (
        log.open("w") as out,
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            out.write(line)
            lines.append(line)
    stop.set()
    sampler.join()
    run = parse(scale, "".join(lines))
    run.seconds = time.monotonic() - started
    run.loads = loads
    if proc.returncode or not run.complete:
        print(f"!!! scale {scale}: campaign.py exited {proc.returncode}, figures incomplete", flush=True)
    return run


def _median_load(loads: list[float]) -> str:
    if not loads:
        return "-"
    m = sorted(loads)
    return f"{m[0]:.0f}/{m[len(m) // 2]:.0f}/{m[-1]:.0f}"


def table(runs: list[Run]) -> str:
    """The per-scale table and the drift from the smallest to the largest scale."""
    names = [*SERVICES, *INFRA]
    head = f"{'':34}" + "".join(f"{r.scale:>11g}" for r in runs)
    rows = [
        head,
        "  visits stored" + " " * 20 + "".join(f"{r.visits:>11,}" for r in runs),
        "  failed requests" + " " * 18 + "".join(f"{r.failed:>11}" for r in runs),
        "  bench run (s)" + " " * 20 + "".join(f"{r.seconds:>11.0f}" for r in runs),
        "  import / directory consumed (s)   " + "".join(f"{r.import_s:>5.0f}/{r.directory_s:<5.0f}" for r in runs),
        "  launch / its events consumed (s)  "
        + "".join(f"{r.launch_s:>5.0f}/{r.launch_consumed_s:<5.0f}" for r in runs),
        "CPU ms per visit (campaign window)",
        *(f"  {n:<32}" + "".join(f"{r.cpu_ms_per_visit(n):>11.2f}" for r in runs) for n in names),
        "  all of them" + " " * 22 + "".join(f"{sum(r.cpu_ms_per_visit(n) for n in names):>11.2f}" for r in runs),
        "  PostgreSQL's, by what its processes served",
        *(
            f"    {label:<30}" + "".join(f"{1000 * r.pg_served.get(label, 0) / max(r.visits, 1):>11.2f}" for r in runs)
            for label in dict.fromkeys(k for r in runs for k in sorted(r.pg_served, key=lambda k: -r.pg_served[k]))
        ),
        "reporting refresh after its last event (s)",
        "  " + " " * 32 + "".join(f"{r.refresh:>11.1f}" for r in runs),
        "finding → case p50 / p99 (ms)",
        "  " + " " * 32 + "".join(f"{r.p50:>5.0f}/{r.p99:<5.0f}" for r in runs),
        "accepted visits/s; first visit → caught up (s)",
        "  " + " " * 32 + "".join(f"{r.accepted:>5.0f}/{r.wall:<5.0f}" for r in runs),
        "peak RSS per service process (MB)",
        *(f"  {n:<32}" + "".join(f"{r.peak_mb.get(n, 0):>11}" for r in runs) for n in SERVICES),
        "raw PostgreSQL COPY of the visit rows (rows/s)",
        "  " + " " * 32 + "".join(f"{r.copy_rate:>11,.0f}" for r in runs),
        "load average at start / end",
        "  " + " " * 32 + "".join(f"{r.load[0]:>5.1f}/{r.load[1]:<5.1f}" for r in runs),
        "load average each minute of the run: min / median / max",
        "  " + " " * 32 + "".join(f"{_median_load(r.loads):>11}" for r in runs),
    ]
    done = [r for r in runs if r.complete]
    if len(done) >= 2:
        a, b = done[0], done[-1]
        growth = b.visits / max(a.visits, 1)
        rows.append(f"from scale {a.scale:g} to {b.scale:g} ({growth:.1f}x the visits):")
        for n in names:
            x, y = a.cpu_ms_per_visit(n), b.cpu_ms_per_visit(n)
            rows.append(f"  CPU per visit {n:<12} {x:7.2f} → {y:7.2f} ms  ({(y / x - 1) * 100 if x else 0:+.0f} %)")
        for n in SERVICES:
            x2, y2 = a.peak_mb.get(n, 0), b.peak_mb.get(n, 0)
            rows.append(f"  peak RSS {n:<17} {x2:5} → {y2:5} MB  ({y2 / max(x2, 1):.2f}x for {growth:.1f}x the visits)")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="0.25,0.5,1,2", help="comma-separated scales, smallest first")
    ap.add_argument("--log-dir", type=Path, default=ROOT / ".devstack" / "bench-scale")
    ap.add_argument("--parse", nargs="*", type=Path, default=[], help="only tabulate earlier campaign-<S>.txt outputs")
    ap.add_argument("extra", nargs="*", help="further campaign.py options (after --)")
    a = ap.parse_args()
    if a.parse:
        runs = [parse(float(p.stem.rsplit("-", 1)[1]), p.read_text()) for p in a.parse]
    else:
        a.log_dir.mkdir(parents=True, exist_ok=True)
        runs = []
        for s in (float(x) for x in a.scales.split(",")):
            runs.append(campaign(s, a.extra, a.log_dir / f"campaign-{s:g}.txt"))
            print("\n" + table(runs), flush=True)  # the table so far: a long run can be stopped between scales
    print("\n=== cost per scale\n" + table(sorted(runs, key=lambda r: r.scale)))
    if any(not r.complete for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()

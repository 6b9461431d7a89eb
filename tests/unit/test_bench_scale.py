"""The scale sweep's reading of a campaign's output (bench/scale.py): each figure the table prints comes from its line,
PostgreSQL's CPU split by what its processes served among them."""

from __future__ import annotations

from bench.scale import parse

# The lines of a campaign.py output that the sweep reads, shortened (the run's other lines left out).
OUTPUT = """
city (scale 0.25): 46,054 families; import 14s, the services consumed the directory 13s later
campaign: 46,054 visits: launch + assignments read 37s, their events consumed 4s later

scale 0.25: 46,054 visits stored, 0 rejected, 0 failed requests
accepted (HTTP), first → last answer: 702 visits/s over 65.6s   (target ≥ 1500 sustained: MISSED)
first visit → outreach caught up 66.1s, reporting caught up 68.6s (its consumers had no lag at 66.1s): wall 68.6s
finding → case (5,733 cases): p50 158 ms, p99 301 ms, max 392 ms   (target p99 ≤ 100 ms: MISSED)
peak memory: max VmRSS polled during the campaign / VmHWM of the run; CPU seconds in the campaign window
  committees     167 MB /    356 MB   CPU    0.1s
  visits         124 MB /    136 MB   CPU   33.9s
  outreach       115 MB /    139 MB   CPU   12.4s
  reporting       98 MB /     99 MB   CPU   16.8s
  postgres    (all its processes)      CPU   50.9s
  kafka       (all its processes)      CPU    7.2s
  postgres, by what its processes served (polled every second):
    reporting                        CPU   19.0s = 0.413 ms per visit
    visits                           CPU   15.3s = 0.332 ms per visit
    autovacuum in visits             CPU    3.0s = 0.065 ms per visit
    the bench's sessions             CPU    0.1s = 0.002 ms per visit
raw PostgreSQL COPY of the same 46,054 visit rows: 19,681 rows/s; accepted = 0.036 x raw, end to end = 0.034 x raw
load average at start 2.29, at the end of the campaign 3.09 (2 CPUs, shared with other work)
"""


def test_a_campaigns_figures_are_read_from_its_output() -> None:
    run = parse(0.25, OUTPUT)
    assert run.complete
    assert (run.visits, run.failed, run.accepted) == (46_054, 0, 702)
    assert (run.wall, round(run.refresh, 1), run.p50, run.p99) == (68.6, 2.5, 158, 301)
    assert run.cpu == {
        "committees": 0.1,
        "visits": 33.9,
        "outreach": 12.4,
        "reporting": 16.8,
        "postgres": 50.9,
        "kafka": 7.2,
    }
    assert run.peak_mb["visits"] == 136
    assert run.copy_rate == 19_681
    assert (run.import_s, run.directory_s, run.launch_s, run.launch_consumed_s) == (14, 13, 37, 4)


def test_postgres_cpu_is_split_by_what_its_processes_served_and_left_out_of_the_processes() -> None:
    run = parse(0.25, OUTPUT)
    assert run.pg_served == {
        "reporting": 19.0,
        "visits": 15.3,
        "autovacuum in visits": 3.0,
        "the bench's sessions": 0.1,
    }
    assert "reporting" in run.cpu and run.cpu["reporting"] == 16.8  # the service's process, not its backends

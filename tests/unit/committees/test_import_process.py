"""The import's validating process (a fork of the service) ends as soon as the service process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from services.committees.usecases import import_jobs

# A stand-in for the service: it starts the import's validating process the way `import_jobs.apply` does, gives it
# a long validation, prints its pid and waits to be killed.
SERVICE = """
import multiprocessing, os, sys, time
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from services.committees.domain.rows import Checker
from services.committees.usecases import import_jobs

checker = Checker({}, set(), date(2026, 1, 1))
pool = ProcessPoolExecutor(
    1, mp_context=multiprocessing.get_context("fork"), initializer=import_jobs._start_checking,
    initargs=(checker, os.getpid()),
)
folder = Path(sys.argv[1])
source = folder / "families.csv"
source.write_text("family_no,parents_work_away,living_arrangement\\n" + "f1,true,grandparents\\n" * 2_000_000)
pool.submit(import_jobs._check, "families", source, folder / "families.copy", "csv")
time.sleep(0.5)
print(*(p.pid for p in pool._processes.values()), flush=True)
time.sleep(600)
"""


def test_the_validating_process_ends_when_the_service_is_killed(tmp_path):
    service = subprocess.Popen([sys.executable, "-c", SERVICE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert service.stdout is not None
        [child] = map(int, service.stdout.readline().split())
        os.kill(service.pid, signal.SIGKILL)
        service.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the validating process outlived the service"
    finally:
        if service.poll() is None:
            service.kill()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie counts as gone: it is only waiting for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_temporary_files_of_a_killed_import_are_removed_and_no_live_ones(tmp_path):
    """A service killed mid-import leaves its temporary folder behind; the next start removes the folders whose
    process is gone, and keeps those of live processes (another replica's import, its own)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"{import_jobs.TEMP_PREFIX}{gone.pid}-x1"
    live = tmp_path / f"{import_jobs.TEMP_PREFIX}{os.getppid()}-x2"
    own = tmp_path / f"{import_jobs.TEMP_PREFIX}{os.getpid()}-x3"
    for folder in (dead, live, own):
        folder.mkdir()
        (folder / "guardians.csv").write_text("guardian_no\n")
    assert import_jobs.remove_left_behind(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and own.exists()

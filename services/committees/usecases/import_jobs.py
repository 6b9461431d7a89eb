"""Bulk import jobs: parse the bureau's CSV/JSON export, validate every row, apply the good ones set-based."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import asyncpg
from prometheus_client import Counter, Histogram

from services.committees.domain.files import validate_chunks
from services.committees.domain.rows import ENTITIES, Checker, RowError
from services.committees.settings import Settings
from services.committees.store import imports as store
from services.committees.store import upserts
from services.committees.store.upserts import Staged
from services.committees.usecases import students
from shared import db
from shared.clock import Clock

log = logging.getLogger(__name__)

RESUME_SECONDS = 5.0
IMPORTS = Counter("committees_imports_total", "Bulk import jobs finished, by status.", ["status"])
IMPORT_ROWS = Counter("committees_import_rows_total", "Rows of finished bulk imports.", ["entity", "outcome"])
IMPORT_DURATION = Histogram(
    "committees_import_duration_seconds",
    "Time to validate and apply one bulk import.",
    buckets=(1, 5, 15, 30, 60, 120, 300),
)


# Files from this size on are validated in a process of their own (the event loop's interpreter then only streams
# the COPYs); smaller ones in a thread, where starting a process would cost more than the validation.
PROCESS_BYTES = 1_000_000
_checker: Checker | None = None  # the validating process's state: what earlier entities of the import added


def _start_checking(checker: Checker, parent: int) -> None:
    """The validating process's start: its state, and a watch that ends it as soon as the service process is gone
    (killed: the fork holds copies of the service's sockets, its database connection with the import's open
    transaction among them, which must close for PostgreSQL to roll it back and for a restart to take the port)."""
    global _checker
    _checker = checker
    # what the process inherited is never collected here: a collection would write to every inherited object's
    # header, copying each page the fork shares with the service process (measured: 169-201 MB at scale 0.25)
    gc.freeze()
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


def _check(
    entity: str, source: Path, staged: Path, fmt: str, checker: Checker | None = None
) -> tuple[int, int, list[RowError]]:
    """Validate one entity's file (at `source`), writing its accepted rows as staging COPY data to `staged` a chunk
    at a time; how many rows were accepted, received, and the row errors found (`checker` when run in a thread, the
    process's own otherwise)."""
    own = checker is None  # the validating process's: it runs nothing else
    checker = checker or _checker
    assert checker is not None
    found = len(checker.errors)
    accepted = received = 0
    if own:
        gc.disable()  # validation makes no reference cycles; the collector's passes cost a fifth of its time
    try:
        with source.open(encoding="utf-8-sig", newline="") as text, staged.open("wb") as out:
            for clean, n in validate_chunks(entity, text, fmt, checker):  # a chunk's rows at a time
                out.write(upserts.stage_data(entity, clean))
                accepted += len(clean)
                received += n
        source.unlink()
    finally:
        if own:
            gc.enable()
    errors = checker.errors[found:]
    del checker.errors[found:]
    return accepted, received, errors


class _Pipeline:
    """One import's files on their way: each uploaded file to a temporary file, validated (in a thread, or in the
    validating process `pool`) into a file of staging COPY data, then upserted on `conn`; counts and timings."""

    def __init__(
        self, conn: asyncpg.Connection, fmt: str, checker: Checker, pool: ProcessPoolExecutor | None, folder: Path
    ) -> None:
        self.conn, self.fmt, self.checker, self.pool, self.folder = conn, fmt, checker, pool, folder
        self.timings: dict[str, float] = {}
        self.done: dict[str, tuple[int, int]] = {}
        self.received: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self.events = 0

    async def write_file(self, entity: str, load: Callable[[str, BinaryIO], Awaitable[None]]) -> Path:
        path = self.folder / f"{entity}.{self.fmt}"
        with path.open("wb") as out:
            await load(entity, out)
        return path

    async def check(self, entity: str, source: Path) -> Staged:
        t = time.perf_counter()
        staged = self.folder / f"{entity}.copy"
        if self.pool is None:
            checked = await asyncio.to_thread(_check, entity, source, staged, self.fmt, self.checker)
        else:
            loop = asyncio.get_running_loop()
            checked = await loop.run_in_executor(self.pool, _check, entity, source, staged, self.fmt)
        self.accepted[entity], self.received[entity], errors = checked
        self.checker.errors.extend(errors)
        self.timings[f"validate_{entity}"] = round(time.perf_counter() - t, 3)
        return Staged(staged, self.accepted[entity])

    async def upsert(self, entity: str, staged: Staged, at: datetime, timeout: float | None) -> None:
        t = time.perf_counter()
        created, updated, n = await upserts.upsert_entity(self.conn, entity, staged, at, timeout)
        await asyncio.to_thread(staged.path.unlink)
        self.timings[entity] = round(time.perf_counter() - t, 3)
        self.done[entity] = (created, updated)
        self.events += n


async def apply(
    conn: asyncpg.Connection,
    at: datetime,
    files: dict[str, int],
    load: Callable[[str, BinaryIO], Awaitable[None]],
    fmt: str,
    checker: Checker,
    timeout: float | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[dict[str, dict[str, int]], int]:
    """Validate and upsert entity by entity in dependency order, inside the caller's transaction.

    `files` are the sizes of the entities' files, `load` writes one to a stream (on `conn`, while it is idle). Each
    file goes through temporary files (the upload, then its staging COPY data), so neither this process nor the
    validating one holds a whole file, and the events are written a few thousand at a time: memory does not grow
    with the upload. Validating the next entity (Python, in a process of its own for large files, else a thread)
    overlaps with the database applying the previous one; the row errors are added to `checker.errors`. Every
    event says it occurred `at`. Returns counts per entity (received/created/updated/unchanged/rejected) and the
    number of events written.
    """
    await upserts.insert_stage_tables(conn)
    pool: ProcessPoolExecutor | None = None
    if sum(files.values()) >= PROCESS_BYTES:
        # fork: the child starts at once with the modules and the checker it needs, and runs only the pure validation
        # (spawn would import the service's modules again, seconds under load, and run its __main__).
        fork = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(1, mp_context=fork, initializer=_start_checking, initargs=(checker, os.getpid()))
    job = _Pipeline(conn, fmt, checker, pool, Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")))
    order = [e for e in ENTITIES if e in files]
    previous: asyncio.Task[None] | None = None
    try:
        source = await job.write_file(order[0], load)  # one file at least: an import starts with one
        for entity, following in zip(order, [*order[1:], ""], strict=True):
            validating = asyncio.create_task(job.check(entity, source))
            if previous is not None:
                await previous
            if following:
                source = await job.write_file(following, load)  # the connection is idle here
            staged = await validating
            previous = asyncio.create_task(job.upsert(entity, staged, at, timeout))
        if previous is not None:
            await previous
    finally:
        if previous is not None and not previous.done():
            previous.cancel()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(job.folder, ignore_errors=True)
    t = time.perf_counter()
    events = job.events + await upserts.insert_family_events(conn, at, timeout, bulk=True)
    job.timings["family_events"] = round(time.perf_counter() - t, 3)
    if timings is not None:
        timings.update(job.timings)
    return _counts(job.received, job.accepted, job.done), events


TEMP_PREFIX = "committees-import-"  # + the pid of the service process, then a random part


def remove_left_behind(folder: Path | None = None) -> list[Path]:
    """Remove the temporary folders of imports whose service process is gone (killed mid-import: nothing else
    removes them); those removed."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = path.name[len(TEMP_PREFIX) :].split("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except PermissionError:
            pass  # alive, another account's
    return removed


def _counts(
    received: dict[str, int], accepted: dict[str, int], done: dict[str, tuple[int, int]]
) -> dict[str, dict[str, int]]:
    """Rows per entity: received, created, updated, unchanged, rejected."""
    return {
        entity: {
            "received": n,
            "created": done.get(entity, (0, 0))[0],
            "updated": done.get(entity, (0, 0))[1],
            "unchanged": accepted[entity] - sum(done.get(entity, (0, 0))),
            "rejected": n - accepted[entity],
        }
        for entity, n in received.items()
    }


async def run(settings: Settings, clock: Clock, import_id: str) -> None:
    """Run one queued job to completion in a single transaction; the job row records the outcome."""
    conn = await db.connect(settings.database_url, settings.db_schema)
    try:
        if not await store.update_claimed(conn, settings.db_schema, import_id):
            return
        started = time.perf_counter()
        try:
            async with conn.transaction():
                await store.update_import_session(conn, settings.db_schema)
                job = await store.get_import(conn, import_id)
                assert job is not None
                files = await store.list_file_sizes(conn, import_id)
                units = await store.list_units(conn)
                family_nos = await store.list_family_nos(conn)
                now = clock.now()
                checker = Checker(units, family_nos, settings.today(now), await store.list_national_ids(conn))
                timings = {"load": round(time.perf_counter() - started, 3)}
                counts, events = await apply(
                    conn,
                    now,
                    files,
                    functools.partial(store.copy_file, conn, import_id),
                    job["format"],
                    checker,
                    settings.import_statement_timeout_seconds,
                    timings,
                )
                errors = sorted(checker.errors, key=lambda e: (ENTITIES.index(e.entity), e.row, e.field))
                started_scoring = time.perf_counter()
                candidates = await students.imported_candidates(conn)
                timings["duplicates"] = round(time.perf_counter() - started_scoring, 3)
                await store.update_status(
                    conn,
                    import_id,
                    "succeeded",
                    counts=counts,
                    errors=[e.as_dict() for e in errors[: settings.import_max_errors_listed]],
                    error_count=len(errors),
                    events=events,
                    timings=timings,
                    duplicate_candidates=candidates,
                )
                await store.update_finished(conn, import_id)
            IMPORTS.labels("succeeded").inc()
            IMPORT_DURATION.observe(time.perf_counter() - started)
            for entity, c in counts.items():
                for outcome in ("created", "updated", "unchanged", "rejected"):
                    IMPORT_ROWS.labels(entity, outcome).inc(c[outcome])
            log.info(
                "import finished",
                extra={"import_id": import_id, "seconds": round(time.perf_counter() - started, 2), "events": events},
            )
        except Exception as exc:
            IMPORTS.labels("failed").inc()
            log.exception("import failed", extra={"import_id": import_id})
            await store.update_status(
                conn, import_id, "failed", message=f"{type(exc).__name__}: the import was not applied"
            )
    finally:
        await conn.close()


class Runner:
    """Runs import jobs as tasks of this process; resumes jobs left behind by a crashed process."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()

    async def serve(self, pool: asyncpg.Pool) -> None:
        """Background task: resume left-behind jobs (at start and every few seconds: another replica may have died
        with one), then cancel running ones when the service stops."""
        await asyncio.to_thread(remove_left_behind)
        try:
            while True:
                await self.resume(pool)
                await asyncio.sleep(RESUME_SECONDS)
        finally:
            for t in list(self.tasks):
                t.cancel()

    def start(self, import_id: str) -> None:
        if any(t.get_name() == f"import:{import_id}" for t in self.tasks):
            return
        task = asyncio.create_task(run(self.settings, self.clock, import_id), name=f"import:{import_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def resume(self, pool: asyncpg.Pool) -> None:
        with contextlib.suppress(*db.DB_UNAVAILABLE):  # the next round tries again
            for import_id in await store.list_runnable(pool):
                self.start(import_id)


RUNNERS: dict[str, Runner] = {}


def runner_for(settings: Settings, clock: Clock) -> Runner:
    """The job runner of the service instance using `settings` (one per schema; the clock of the first call)."""
    if settings.db_schema not in RUNNERS:
        RUNNERS[settings.db_schema] = Runner(settings, clock)
    return RUNNERS[settings.db_schema]

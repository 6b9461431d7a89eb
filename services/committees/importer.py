"""Bulk import jobs: parse the bureau's CSV/JSON export, validate every row, apply the good ones set-based."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import time
from typing import Any

import asyncpg
import orjson
from prometheus_client import Counter, Histogram

from services.committees.domain.rows import ENTITIES, REQUIRED_COLUMNS, Checker, RowError
from services.committees.settings import Settings
from services.committees.store import imports as store
from services.committees.store import upserts
from shared import db

log = logging.getLogger(__name__)

RESUME_SECONDS = 5.0
IMPORTS = Counter("committees_imports_total", "Bulk import jobs finished, by status.", ["status"])
IMPORT_ROWS = Counter("committees_import_rows_total", "Rows of finished bulk imports.", ["entity", "outcome"])
IMPORT_DURATION = Histogram(
    "committees_import_duration_seconds",
    "Time to validate and apply one bulk import.",
    buckets=(1, 5, 15, 30, 60, 120, 300),
)

Rows = list[tuple[int, dict[str, Any]]]


def parse_csv(entity: str, text: str) -> tuple[Rows, list[RowError], int]:
    """Rows numbered by their line in the file (the header is line 1); also the number of data rows."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    errors: list[RowError] = []
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        return [], [RowError(entity, 1, "*", f"malformed CSV: {exc}")], 0
    missing = [c for c in REQUIRED_COLUMNS[entity] if c not in header]
    if missing:  # a wrong file: one error per missing column instead of one per row, every row rejected
        n = sum(1 for _ in reader)
        return [], [RowError(entity, 1, c, "required column is missing from the header") for c in missing], n
    width = len(header)
    rows: Rows = []
    try:
        for cells in reader:
            if len(cells) > width:
                errors.append(RowError(entity, reader.line_num, "*", "row has more cells than the header"))
            elif cells:
                rows.append((reader.line_num, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        errors.append(RowError(entity, reader.line_num, "*", f"malformed CSV: {exc}"))
    return rows, errors, len(rows) + len(errors)


def parse_json(entity: str, text: str) -> tuple[Rows, list[RowError], int]:
    """Rows numbered by their index in the JSON array (from 0)."""
    data = orjson.loads(text)
    rows: Rows = []
    errors: list[RowError] = []
    for i, raw in enumerate(data):
        if isinstance(raw, dict):
            rows.append((i, raw))
        else:
            errors.append(RowError(entity, i, "*", "must be an object"))
    return rows, errors, len(data)


def validate_one(entity: str, text: str, fmt: str, checker: Checker) -> tuple[list[dict[str, Any]], int]:
    """Clean rows of one entity (after those it refers to) and the number of rows received."""
    rows, errors, total = (parse_csv if fmt == "csv" else parse_json)(entity, text)
    checker.errors.extend(errors)
    clean: list[dict[str, Any]] = getattr(checker, entity)(rows)
    return clean, total


def validate(
    files: dict[str, str], fmt: str, checker: Checker
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Clean rows per entity (in dependency order) and the number of rows received per entity."""
    clean: dict[str, list[dict[str, Any]]] = {}
    received: dict[str, int] = {}
    for entity in ENTITIES:
        if entity in files:
            clean[entity], received[entity] = validate_one(entity, files[entity], fmt, checker)
    return clean, received


async def apply(
    conn: asyncpg.Connection,
    files: dict[str, str],
    fmt: str,
    checker: Checker,
    timeout: float | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[dict[str, dict[str, int]], int]:
    """Validate and upsert entity by entity in dependency order, inside the caller's transaction.

    Validating the next entity (Python, in a thread) overlaps with the database applying the previous one.
    Returns counts per entity (received/created/updated/unchanged/rejected) and the number of events written.
    """
    trace = upserts.Trace.now()
    await upserts.prepare(conn)
    timings = {} if timings is None else timings
    done: dict[str, tuple[int, int]] = {}
    received: dict[str, int] = {}
    accepted: dict[str, int] = {}
    events = 0

    async def check(entity: str) -> list[dict[str, Any]]:
        t = time.perf_counter()
        clean, received[entity] = await asyncio.to_thread(validate_one, entity, files[entity], fmt, checker)
        accepted[entity] = len(clean)
        timings[f"validate_{entity}"] = round(time.perf_counter() - t, 3)
        return clean

    async def upsert(entity: str, clean: list[dict[str, Any]]) -> None:
        nonlocal events
        t = time.perf_counter()
        created, updated, n = await upserts.upsert(conn, entity, clean, trace, timeout)
        timings[entity] = round(time.perf_counter() - t, 3)
        done[entity] = (created, updated)
        events += n

    previous: asyncio.Task[None] | None = None
    try:
        for entity in [e for e in ENTITIES if e in files]:
            validating = asyncio.create_task(check(entity))
            if previous is not None:
                await previous
            previous = asyncio.create_task(upsert(entity, await validating))
        if previous is not None:
            await previous
    finally:
        if previous is not None and not previous.done():
            previous.cancel()
    t = time.perf_counter()
    events += await upserts.publish_family_facts(conn, trace, timeout)
    timings["family_events"] = round(time.perf_counter() - t, 3)
    counts = {
        entity: {
            "received": n,
            "created": done.get(entity, (0, 0))[0],
            "updated": done.get(entity, (0, 0))[1],
            "unchanged": accepted[entity] - sum(done.get(entity, (0, 0))),
            "rejected": n - accepted[entity],
        }
        for entity, n in received.items()
    }
    return counts, events


async def run(settings: Settings, import_id: str) -> None:
    """Run one queued job to completion in a single transaction; the job row records the outcome."""
    conn = await db.connect(settings.database_url, settings.db_schema)
    try:
        if not await store.claim(conn, settings.db_schema, import_id):
            return
        started = time.perf_counter()
        try:
            async with conn.transaction():
                # One import at a time: concurrent imports of overlapping rows would race on the same keys.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", db.lock_key(f"import:{settings.db_schema}"))
                # Set-based joins and aggregates over ~200k rows: let them hash in memory instead of spilling.
                await conn.execute("SET LOCAL work_mem = '64MB'")
                job = await store.get(conn, import_id)
                assert job is not None
                files = await store.files(conn, import_id)
                units = await store.units(conn)
                family_nos = await store.family_nos(conn)
                checker = Checker(units, family_nos)
                timings = {"load": round(time.perf_counter() - started, 3)}
                counts, events = await apply(
                    conn, files, job["format"], checker, settings.import_statement_timeout_seconds, timings
                )
                errors = sorted(checker.errors, key=lambda e: (ENTITIES.index(e.entity), e.row, e.field))
                await store.set_status(
                    conn,
                    import_id,
                    "succeeded",
                    counts=counts,
                    errors=[e.as_dict() for e in errors[: settings.import_max_errors_listed]],
                    error_count=len(errors),
                    events=events,
                    timings=timings,
                )
                await conn.execute("UPDATE imports SET finished_at = now() WHERE import_id = $1", import_id)
                await conn.execute("DELETE FROM import_files WHERE import_id = $1", import_id)
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
            await store.set_status(
                conn, import_id, "failed", message=f"{type(exc).__name__}: the import was not applied"
            )
    finally:
        await conn.close()


class Runner:
    """Runs import jobs as tasks of this process; resumes jobs left behind by a crashed process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tasks: set[asyncio.Task[None]] = set()

    async def serve(self, pool: asyncpg.Pool) -> None:
        """Background task: resume left-behind jobs (at start and every few seconds: another replica may have died
        with one), then cancel running ones when the service stops."""
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
        task = asyncio.create_task(run(self.settings, import_id), name=f"import:{import_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def resume(self, pool: asyncpg.Pool) -> None:
        with contextlib.suppress(*db.DB_UNAVAILABLE):  # the next round tries again
            for import_id in await store.runnable(pool):
                self.start(import_id)


RUNNERS: dict[str, Runner] = {}


def runner_for(settings: Settings) -> Runner:
    """The job runner of the service instance using `settings` (one per schema)."""
    if settings.db_schema not in RUNNERS:
        RUNNERS[settings.db_schema] = Runner(settings)
    return RUNNERS[settings.db_schema]

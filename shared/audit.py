"""The audit log of personal-data reads: one append-only row per read, in the read's own transaction.

Every service has the `audit_reads` table (kit migration 002). A use case that returns personal data reads inside
`async with audit.reading(pool, principal, "case") as read:` (the read's connection and transaction), names what it
read with `read.of(...)`, and only then answers: the audit row is written in the same transaction, so when it cannot
be written the read fails with it. Reads inside a transaction the caller already holds (lists, answers to writes)
call `record` on that connection. Auditors query `GET /api/v1/audit/<service>/reads` of the owning service, limited to
their own subtree by the org path of what was read. Rows older than the configured retention are removed by
`purge` (the database refuses every other UPDATE/DELETE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query
from pydantic import BaseModel

from shared import context, pages, scope
from shared.auth import CurrentPrincipal, Principal, Role
from shared.db import Params
from shared.web import Pool, Runtime

log = logging.getLogger(__name__)

Action = Literal["read", "list", "export", "write"]
PURGE_INTERVAL_SECONDS = 6 * 3600


class AuditRead(BaseModel):
    """One audited read: who, in which role, what (and whose data), where in the org tree, when, which request."""

    id: int
    at: datetime
    subject: str
    roles: list[str]
    department: str | None
    reader_path: str
    org_path: str
    action: str
    resource_type: str
    resource_id: str | None
    subject_ids: list[str]
    request_id: str | None


async def record(
    conn: asyncpg.Connection,
    principal: Principal,
    *,
    resource_type: str,
    org_path: str,
    resource_id: str | None = None,
    subject_ids: Iterable[str] = (),
    subject_paths: Mapping[str, str] | None = None,
    action: Action = "read",
) -> None:
    """Write who read what (and whose data) inside the caller's open transaction.

    `org_path` is where the data read sits (a list: the subtree listed); `subject_paths` gives the org path of
    each subject id that sits elsewhere below it (the others are taken to sit at `org_path`).
    """
    if not conn.is_in_transaction():
        # Outside a transaction the read could answer after an audit row that later fails, or vice versa.
        raise RuntimeError("audit.record needs the read's own transaction")
    paths = subject_paths or {}
    ids = sorted({s for s in subject_ids if s})
    id_paths = [paths.get(i, org_path) for i in ids]
    ctx = context.current()
    await conn.execute(
        "INSERT INTO audit_reads (subject, roles, department, reader_path, org_path, action, resource_type,"
        " resource_id, subject_ids, subject_paths, subject_units, request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        principal.subject,
        sorted(str(r) for r in principal.roles),
        principal.department,
        principal.org_path,
        org_path,
        action,
        resource_type,
        resource_id,
        ids,
        id_paths,
        units([org_path, *id_paths]),
        ctx.request_id if ctx else None,
    )


@dataclass
class Reading:
    """An audited read under way: its connection, and what it read once `of` has named it."""

    conn: asyncpg.Connection
    what: dict[str, Any] | None = None

    def of(
        self,
        resource_id: str,
        org_path: str,
        subject_ids: Iterable[str],
        subject_paths: Mapping[str, str] | None = None,
    ) -> None:
        """Name what was read: which resource, where it sits, whose data (and where subjects elsewhere sit)."""
        self.what = {
            "resource_id": resource_id,
            "org_path": org_path,
            "subject_ids": list(subject_ids),
            "subject_paths": subject_paths,
        }


@contextlib.asynccontextmanager
async def reading(pool: asyncpg.Pool, principal: Principal, resource_type: str) -> AsyncIterator[Reading]:
    """The one way to read one resource's personal data: a connection and transaction for the read; at the end of
    the block the audit row of what `read.of` named is written in that same transaction (a block that named
    nothing is a bug: RuntimeError). An exception in the block (403, 404) writes no row."""
    async with pool.acquire() as conn, conn.transaction():
        read = Reading(conn)
        yield read
        if read.what is None:
            raise RuntimeError(f"an audited read of a {resource_type} did not name what it read")
        await record(conn, principal, resource_type=resource_type, **read.what)


def units(paths: Iterable[str]) -> list[str]:
    """Every org unit path on the way down to each of `paths` (`/a/b` gives `/a` and `/a/b`), sorted."""
    out: set[str] = set()
    for path in paths:
        parts = [p for p in path.split("/") if p]
        out.update("/" + "/".join(parts[:n]) for n in range(1, len(parts) + 1))
    return sorted(out)


class ReadsFilter(BaseModel):
    """What an auditor may narrow the reads to (the query parameters of the reads route); none: every read."""

    resource_type: str | None = None
    resource_id: str | None = None
    reader: str | None = None
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def query(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    under: str,
    limit: int = 100,
    before_id: int | None = None,
    **filters: Any,
) -> list[asyncpg.Record]:
    """Audit rows of reads that touched data inside the subtree `under`, newest first (older than `before_id`),
    narrowed by `filters` (the fields of `ReadsFilter`).

    A read whose org path lies outside `under` (a district list, say) is shown when one of its subjects sits
    inside, naming only those subjects.
    """
    f = ReadsFilter(**filters)
    p = Params(scope.args(under))
    where = [
        f"({scope.sql('org_path', 1)} OR subject_units @> ARRAY[$1])",
        *p.conditions(
            ("resource_type = {}", f.resource_type),
            ("resource_id = {}", f.resource_id),
            ("subject = {}", f.reader),
            ("subject_ids @> ARRAY[{}::text]", f.person_id),
            ("at >= {}", f.since),
            ("at < {}", f.until),
            ("id < {}", before_id),
        ),
    ]
    # The person filter again after the redaction: a person outside `under` is never confirmed.
    redacted = "".join(p.conditions((" WHERE subject_ids @> ARRAY[{}::text]", f.person_id)))
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM (SELECT id, at, subject, roles, department, reader_path, org_path, action, resource_type,"
        " resource_id, request_id,"
        f" CASE WHEN {scope.sql('org_path', 1)} THEN subject_ids"
        f" ELSE ARRAY(SELECT s FROM unnest(subject_ids, subject_paths) AS u(s, p) WHERE {scope.sql('p', 1)})"
        f" END AS subject_ids FROM audit_reads WHERE {' AND '.join(where)}) r{redacted}"
        f" ORDER BY id DESC LIMIT {p.add(limit)}",
        *p,
    )
    return rows


async def purge(conn: asyncpg.Connection | asyncpg.Pool, keep: timedelta) -> int:
    """Remove audit rows older than `keep` (the only delete the database allows); the number removed."""
    removed: int = await conn.fetchval("SELECT audit_purge($1::interval)", keep)
    return removed


async def purge_loop(runtime: Runtime) -> None:
    """Background task of every service: apply the audit retention a few times a day."""
    keep = timedelta(days=runtime.settings.audit_retention_days)
    while True:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            removed = await purge(runtime.pool, keep)
            if removed:
                log.info("audit rows past retention purged", extra={"removed": removed})
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


def reads_router(service: str) -> APIRouter:
    """`GET /api/v1/audit/<service>/reads`: auditors see the reads of data inside their own subtree.

    The service's name is in the path so that every path is unique behind the one gateway (deploy/gateway/).
    """
    r = APIRouter(prefix=f"/api/v1/audit/{service}", tags=["audit"])

    @r.get("/reads", response_model=pages.Page[AuditRead])
    async def reads(
        principal: CurrentPrincipal,
        pool: Pool,
        under: scope.ListScope,
        filters: Annotated[ReadsFilter, Query()],
        limit: pages.Limit = 100,
        cursor: pages.Cursor = None,
    ) -> Any:
        """Who read whose personal data, when, in which role and request (newest first); auditors only.

        Only reads of data inside the auditor's own subtree (or the narrower `org_path`) are listed.
        """
        principal.require(Role.AUDITOR)
        last = pages.after(cursor, int)
        before_id = last[0] if last else None
        rows = await query(pool, under=under, limit=limit + 1, before_id=before_id, **filters.model_dump())
        return pages.page([dict(x) for x in rows], limit, lambda row: (row["id"],))

    return r

"""What the routes share: the paging parameters (a forged cursor is 422), directory writes (moving to use cases)."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Query

from services.committees.domain.rows import Checker
from services.committees.domain.rules import RuleBroken, decode_cursor
from services.committees.store import imports as import_store
from services.committees.store import upserts
from services.committees.usecases.common import page, require_write
from shared.problems import Problem, field_error, invalid, not_found

MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]

__all__ = ["MAX_LIMIT", "Cursor", "Limit", "after", "page", "require_write", "unit_or_404", "write_directory"]


def after(cursor: str | None) -> str | None:
    """The id a cursor continues after (422 for a forged cursor)."""
    try:
        return decode_cursor(cursor)
    except RuleBroken as exc:
        raise invalid("/query/cursor", exc.reason) from None


def _cursor(
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> str | None:
    return after(cursor)


Cursor = Annotated[str | None, Depends(_cursor)]


async def unit_or_404(conn: asyncpg.Connection | asyncpg.Pool, org_unit_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM org_units WHERE org_unit_id = $1", org_unit_id)
    if row is None:
        raise not_found("org unit")
    return row


async def write_directory(
    conn: asyncpg.Connection,
    entity: str,
    raw: dict[str, Any],
    unit_ids: list[str],
    family_nos: set[str],
    *,
    publish_families: bool = True,
) -> tuple[int, int, int]:
    """Validate one directory record like an import row and apply it with the same SQL and events."""
    checker = Checker(await import_store.units(conn, [u for u in unit_ids if u]), family_nos)
    clean = getattr(checker, entity)([(0, raw)])
    if checker.errors:
        raise Problem(
            422,
            "Invalid request",
            "the record breaks the directory's rules",
            errors=[field_error("/" + e.field, e.reason) for e in checker.errors],
        )
    trace = upserts.Trace.now()
    await upserts.prepare(conn)
    created, updated, events = await upserts.upsert(conn, entity, clean, trace)
    if publish_families:
        events += await upserts.publish_family_facts(conn, trace)
    return created, updated, events

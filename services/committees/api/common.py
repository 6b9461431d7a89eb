"""Helpers shared by the routes: scope checks, pagination, directory writes through the import path."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.rows import Checker
from services.committees.domain.rules import RuleBroken, can_write, decode_cursor, encode_cursor
from services.committees.store import imports as import_store
from services.committees.store import upserts
from shared import scope
from shared.auth import Principal
from shared.problems import Problem, field_error, invalid, not_found

MAX_LIMIT = 500


def require_write(principal: Principal, *org_paths: str) -> None:
    """403 unless the caller may change things at EVERY one of `org_paths` (each org unit a write touches)."""
    scope.require(principal, *org_paths)
    if not all(can_write(principal, p) for p in org_paths):
        raise scope.forbidden("requires an admin role covering every org unit this write touches")


def after(cursor: str | None) -> str | None:
    """The id a cursor continues after (422 for a forged cursor)."""
    try:
        return decode_cursor(cursor)
    except RuleBroken as exc:
        raise invalid("/query/cursor", exc.reason) from None


def page(items: list[dict[str, Any]], limit: int, id_field: str) -> dict[str, Any]:
    """A page of `items` (fetched with limit + 1) and the cursor of the next one."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_cursor(str(items[-1][id_field])) if more and items else None}


def rule_problem(exc: RuleBroken) -> Problem:
    """422 for a broken domain rule, pointing at the field."""
    return Problem(422, "Rule broken", exc.reason, errors=[field_error("/" + exc.field, exc.reason)])


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

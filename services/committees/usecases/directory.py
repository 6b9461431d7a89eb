"""What the directory's use cases share: one record written through the import path, people's audit rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel

from services.committees.domain.rows import Checker
from services.committees.store import imports as import_store
from services.committees.store import upserts
from services.committees.usecases.common import audit_write
from shared.auth import Principal
from shared.clock import Clock, local_date
from shared.db import Conn
from shared.problems import Problem, field_error


async def write_record(
    conn: asyncpg.Connection,
    clock: Clock,
    entity: str,
    raw: dict[str, Any],
    unit_ids: list[str],
    family_nos: set[str],
    *,
    publish_families: bool = True,
) -> tuple[int, int, int]:
    """Validate one directory record like an import row and apply it with the same SQL and events."""
    at = clock.now()
    # Birth dates up to the bureau's today (its default zone: this path has no settings; imports use the setting).
    checker = Checker(await import_store.list_units(conn, [u for u in unit_ids if u]), family_nos, local_date(at))
    clean = getattr(checker, entity)([(0, raw)])
    if checker.errors:
        raise Problem(
            422,
            "Invalid request",
            "the record breaks the directory's rules",
            errors=[field_error("/" + e.field, e.reason) for e in checker.errors],
        )
    await upserts.insert_stage_tables(conn)
    created, updated, events = await upserts.upsert_entity(conn, entity, clean, at)
    if publish_families:
        events += await upserts.insert_family_events(conn, at)
    return created, updated, events


def patched(record: dict[str, Any], fields: tuple[str, ...], patch: BaseModel) -> dict[str, Any]:
    """A record's writable fields with a PATCH body's fields applied (those it sets)."""
    return {**{k: record[k] for k in fields}, **patch.model_dump(mode="json", exclude_unset=True)}


async def publish_family_facts(conn: asyncpg.Connection, clock: Clock, family_ids: list[str]) -> int:
    """Publish the facts of these families where they changed."""
    await upserts.insert_stage_tables(conn)
    await upserts.insert_touched_families(conn, family_ids)
    return await upserts.insert_family_events(conn, clock.now())


def answer_audit(kind: Literal["staff", "student"]) -> Callable[[Conn, Principal, dict[str, Any]], Awaitable[Any]]:
    """The audit of a write whose answer carries a `kind` record, when first given and when replayed (`replayed=`);
    it returns the answer."""

    async def audit_answer(conn: Conn, principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
        await audit_write(conn, principal, kind, row[f"{kind}_id"], row["org_path"], row[f"{kind}_id"])
        return row

    return audit_answer

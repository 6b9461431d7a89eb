"""The plan PostgreSQL settles on for a store's statement: what a list costs once a pooled connection has run it
a few times (used by the tests that hold each list to an index; see `shared.db.Params`)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


class Statements:
    """Passed to a store function in place of its connection, to keep the statement it composes (the test plans it
    itself; the function sees no rows)."""

    def __init__(self) -> None:
        self.sql = ""
        self.args: tuple[Any, ...] = ()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.sql, self.args = sql, args
        return []


async def generic_plan(conn: asyncpg.Connection, schema: str, sql: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The generic plan of `sql` in `schema` (the one a prepared statement keeps after five executions when it
    looks no dearer than planning each time; forced here): its top node, as EXPLAIN's JSON."""
    async with conn.transaction():
        await conn.execute(f'SET LOCAL search_path = "{schema}"; SET LOCAL plan_cache_mode = force_generic_plan')
        types = [t.name for t in (await conn.prepare(sql)).get_parameters()]
        values = [await conn.fetchval("SELECT quote_nullable($1::text)", _text(a)) for a in args]
        await conn.execute(f"PREPARE planned({', '.join(types)}) AS {sql}")
        try:
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE planned({', '.join(values)})")
        finally:
            await conn.execute("DEALLOCATE planned")
    top: dict[str, Any] = json.loads(plan)[0]["Plan"]
    return top


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "{" + ",".join(f'"{v}"' for v in value) + "}"
    return str(value)


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's nodes, top first."""
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


def kinds(plan: dict[str, Any]) -> list[str]:
    return [n["Node Type"] for n in nodes(plan)]

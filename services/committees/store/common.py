"""What the store modules share: a row as a dict, the subtree page of a table keyed by one id."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared import scope
from shared.db import Conn, Params, fetch_page


def as_dict(row: asyncpg.Record | None) -> dict[str, Any] | None:
    """A row as a dict (None stays None)."""
    return dict(row) if row else None


async def list_in_subtree(
    conn: Conn, table: str, id_col: str, path: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Rows of `table` whose org_path lies under `path`, by `id_col`, after the id `after`."""
    p = Params(scope.args(path))
    where = [scope.sql("org_path", 1), *p.conditions((f"{id_col} > {{}}", after))]
    return [dict(r) for r in await fetch_page(conn, f"SELECT * FROM {table}", p, where, id_col, limit)]

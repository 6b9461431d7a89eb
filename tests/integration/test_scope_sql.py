"""The subtree filter of shared/scope.py on real PostgreSQL: `_`, `%` and `\\` in org ids are characters."""

from __future__ import annotations

import asyncpg
import pytest

from shared import scope

PATHS = [
    "/c", "/c/d", "/c/d/s_01", "/c/d/s_01/k1", "/c/d/sx01", "/c/d/sx01/k1", "/c/d/s%", "/c/d/s%/k1",
    "/c/d/sAB", "/c/d/sAB/k1", "/c/d/s\\1", "/c/d/s\\1/k", "/c/d/sX1/k", "/c/d2/s1",
]  # fmt: skip


@pytest.mark.parametrize("root", ["/c/d/s_01", "/c/d/s%", "/c/d/s\\1", "/c/d", "/c", "/"])
async def test_subtree_filter_in_postgres(raw_conn: asyncpg.Connection, root: str) -> None:
    rows = await raw_conn.fetch(
        f"SELECT p FROM unnest($3::text[]) AS t(p) WHERE {scope.sql('p', 1)} ORDER BY p", *scope.args(root), PATHS
    )
    assert [r["p"] for r in rows] == sorted(p for p in PATHS if scope.within(p, root))

"""SQL of a merge of duplicate children: what visits holds under the duplicate's id becomes the survivor's."""

from __future__ import annotations

import asyncpg


async def update_student_id(conn: asyncpg.Connection, duplicate: str, survivor: str) -> None:
    """Findings name the survivor; assignments list it (once) instead of the duplicate."""
    await conn.execute("UPDATE findings SET student_id = $2 WHERE student_id = $1", duplicate, survivor)
    await conn.execute(
        "UPDATE assignments SET student_ids = ARRAY(SELECT DISTINCT unnest(array_replace(student_ids, $1, $2)) "
        "ORDER BY 1), updated_at = now() WHERE student_ids @> ARRAY[$1]",  # apps download what changed since
        duplicate,
        survivor,
    )

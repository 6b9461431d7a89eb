"""What the routes share: the paging parameters (a forged cursor is 422)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from services.committees.domain.rules import RuleBroken, decode_cursor
from shared.problems import invalid

MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]


def _after(cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None) -> str | None:
    """The id a cursor continues after (422 for a forged cursor)."""
    try:
        return decode_cursor(cursor)
    except RuleBroken as exc:
        raise invalid("/query/cursor", exc.reason) from None


Cursor = Annotated[str | None, Depends(_after)]

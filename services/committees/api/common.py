"""What the routes share: the kit's paging parameters (the cursor decoded to the id a page continues after), the
subtree parameter and the 404s of unknown ids; writes go through the kit's `shared.writes.Writes`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from shared import openapi, pages

Limit = pages.Limit


def _after(cursor: pages.Cursor = None) -> str | None:
    """The id a page continues after (every committees list is in id order); 422 for a forged cursor."""
    key = pages.after(cursor, str)
    return None if key is None else str(key[0])


Cursor = Annotated[str | None, Depends(_after)]
Under = Annotated[str | None, Query(description="an org unit id: list inside its subtree (default: the caller's own)")]
UNKNOWN_UNDER = openapi.errors({404: "no org unit has the id given as `under`"})


def unknown(*fields: str) -> dict[int | str, dict[str, Any]]:
    """The 404 of a write whose body names something that does not exist (`problems.unknown` points at it)."""
    return openapi.errors({404: "nothing has the id given in " + " or ".join(f"`{f}`" for f in fields)})

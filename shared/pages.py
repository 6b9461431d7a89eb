"""One paging style for every list: `Page[T]` = `{items, next_cursor}` with opaque keyset cursors.

A route takes `limit: pages.Limit` and `cursor: pages.Cursor`, decodes the cursor into the sort key of the last
row it returned (`pages.after(cursor, str)` or `pages.after(cursor, datetime, str)`; a cursor that is not one of
ours is a 422 naming `/query/cursor`), fetches `limit + 1` rows after it in key order, and returns
`pages.page(rows, limit, key)`: the first `limit` rows and the cursor of the next page (null on the last one).
The store's statement states the cursor and the filters only when given (`shared.db.Params.conditions`), so that a
page starts at its cursor in an index instead of sorting every row the other conditions select.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from shared.problems import invalid

T = TypeVar("T")
Row = TypeVar("Row")

MAX_LIMIT = 500
CURSOR_MAX_LENGTH = 512
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


class Page(BaseModel, Generic[T]):
    """One page of a list in a stable order; pass `next_cursor` back as `cursor` for the next one.

    `Page[CaseOut]` is named `CaseOutPage` in the OpenAPI documents."""

    items: list[T]
    next_cursor: str | None = Field(description="the `cursor` of the next page; null on the last page")


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (1 to {MAX_LIMIT})")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=CURSOR_MAX_LENGTH,
        pattern=CURSOR_PATTERN,
        description="`next_cursor` of the previous page; omit for the first page",
    ),
]


def encode_cursor(*key: Any) -> str:
    """An opaque cursor for the rows after `key` (the sort key of the last row of a page)."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def after(cursor: str | None, *types: Any) -> tuple[Any, ...] | None:
    """The sort key a cursor continues after, as values of `types`; None for the first page; 422 for a cursor this
    API did not make (wrong encoding, shape or types)."""
    if cursor is None:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key: tuple[Any, ...] = _adapter(types).validate_python(raw)
    except (binascii.Error, ValueError, ValidationError):
        raise invalid("/query/cursor", "is not a cursor returned by this API") from None
    return key


_ADAPTERS: dict[tuple[Any, ...], TypeAdapter[Any]] = {}


def _adapter(types: tuple[Any, ...]) -> TypeAdapter[Any]:
    if types not in _ADAPTERS:
        _ADAPTERS[types] = TypeAdapter(tuple[types])  # type: ignore[valid-type]
    return _ADAPTERS[types]


def page(rows: Sequence[Row], limit: int, key: Callable[[Row], Sequence[Any]]) -> dict[str, Any]:
    """The first `limit` of `rows` (fetched with `limit + 1`) and the cursor of the next page, if there is one."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return {"items": items, "next_cursor": encode_cursor(*key(items[-1])) if more else None}

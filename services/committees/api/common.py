"""What the routes share: the kit's paging parameters (the cursor decoded to the id a page continues after), the
subtree parameter and the 404s of unknown ids; writes go through the kit's `shared.writes.Writes`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shared import openapi, pages
from shared.auth import CurrentPrincipal
from shared.web import Pool

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


SubtreeLister = Callable[..., Awaitable[dict[str, Any]]]


class NoFilters(BaseModel):
    """A list in a subtree with no filters of its own."""


def subtree_list(
    router: APIRouter, path: str, item: type[BaseModel], lister: SubtreeLister, filters: type[BaseModel] = NoFilters
) -> None:
    """`GET path`: a page of records in a subtree (`under`, default the caller's own) in id order, by `lister`
    (the use case: pool, principal, under, after, limit, and each of `filters`' fields by name), whose name and
    docstring the route takes. The directory's and the cooperation records' lists have this one shape."""
    name = lister.__name__

    async def route(
        principal: CurrentPrincipal, pool: Pool, cursor: Cursor, query: Any, under: Under = None, limit: Limit = 100
    ) -> dict[str, Any]:
        return await lister(pool, principal, under, cursor, limit, **dict(query))

    route.__annotations__["query"] = Annotated[filters, Query()]  # the list's own query parameters
    route.__doc__ = lister.__doc__
    route.__name__ = route.__qualname__ = name  # tracebacks and logs name the route
    router.add_api_route(
        path,
        route,
        methods=["GET"],
        name=name,
        response_model=pages.Page[item],  # type: ignore[valid-type]
        response_model_exclude_unset=True,
        responses=UNKNOWN_UNDER,
    )

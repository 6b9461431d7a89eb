"""What the routes share: the rules dependency and the paged lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from services.outreach.settings import OutreachSettings
from services.outreach.settings import Rules as RulesModel
from shared import pages
from shared.auth import CurrentPrincipal
from shared.web import Pool


def get_rules(request: Request) -> RulesModel:
    """FastAPI dependency: the service's care rules."""
    settings: OutreachSettings = request.app.state.settings
    return settings.rules


Rules = Annotated[RulesModel, Depends(get_rules)]


def paged_list(
    router: APIRouter,
    path: str,
    item: type[BaseModel],
    lister: Callable[..., Awaitable[dict[str, Any]]],
    filters: type[BaseModel],
) -> None:
    """`GET path`: a page of `item`s, newest first, by `lister` (the use case: pool, principal, the list's
    `filters` model, limit, cursor), whose name and docstring the route takes."""

    async def route(
        principal: CurrentPrincipal, pool: Pool, query: Any, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Any:
        return await lister(pool, principal, query, limit, cursor)

    route.__annotations__["query"] = Annotated[filters, Query()]  # the list's own query parameters
    route.__doc__ = lister.__doc__
    name = route.__name__ = route.__qualname__ = lister.__name__  # tracebacks and logs name the route
    page = pages.Page[item]  # type: ignore[valid-type]
    router.add_api_route(path, route, methods=["GET"], name=name, response_model=page)

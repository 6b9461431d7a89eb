"""What the routes share: the rules dependency, the paged lists and the steps with a note."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from services.outreach.settings import OutreachSettings
from services.outreach.settings import Rules as RulesModel
from shared import openapi, pages, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes


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


def note_step(
    router: APIRouter,
    path: str,
    record_id: str,
    step: Callable[..., Awaitable[Any]],
    target: Any,
    note: type[BaseModel],
    answer: type[BaseModel],
    conflict: str,
    name: str,
    doc: str,
) -> None:
    """`POST path`: a step to `target` of the record whose id `path` names `{record_id}`, with an optional `note`
    body, by the write use case `step(w, rules, id, target, note, if_match=...)`; `conflict` is the 409."""

    async def route(record: Any, w: Writes, rules: Rules, if_match: versions.IfMatch, body: Any = None) -> Any:
        return await w.run(step, rules, record, target, body.note if body else None, if_match=if_match)

    route.__annotations__["record"] = Annotated[str, Path(alias=record_id)]
    route.__annotations__["body"] = note | None
    route.__doc__ = doc
    route.__name__ = route.__qualname__ = name  # tracebacks and logs name the route
    responses = openapi.errors({409: conflict})
    router.add_api_route(path, route, methods=["POST"], name=name, response_model=answer, responses=responses)

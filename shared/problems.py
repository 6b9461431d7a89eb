"""RFC 9457 problem+json: one exception type and the handlers that render every error with it."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import DB_UNAVAILABLE, is_transient

T = TypeVar("T")

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    """One field at fault: where (a JSON pointer into the body, or `/query/<name>`, `/path/<name>`,
    `/header/<name>`) and what is wrong with it."""

    model_config = ConfigDict(title="FieldError")

    pointer: str = Field(
        description="JSON pointer (RFC 6901) to the field; query, path and header fields keep their "
        "source as the first token"
    )
    detail: str = Field(description="what is wrong with the field")


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document, the body of every error (media type `application/problem+json`)."""

    model_config = ConfigDict(title="Problem")

    type: str = Field(
        "about:blank", description="a URI naming the kind of problem; `about:blank` when the status says it"
    )
    title: str = Field(description="a short summary of the kind of problem")
    status: int = Field(ge=400, le=599, description="the HTTP status code")
    detail: str | None = Field(None, description="what happened in this occurrence")
    instance: str | None = Field(None, description="the request path of this occurrence")
    errors: list[FieldError] | None = Field(
        None, description="extension: the fields at fault, one entry each (only for 422 and similar)"
    )
    version: int | None = Field(
        None, description="extension: the resource's current version, also its `ETag` (only for 412)"
    )


class Problem(Exception):
    """An error to return as problem+json; `errors` lists field-level faults."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.type = type_
        self.headers = headers
        self.extensions = extensions or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = self.errors
        return {**doc, **self.extensions}


def field_error(pointer: str, detail: str) -> dict[str, Any]:
    """One entry of `errors[]`: a JSON pointer to the field and what is wrong with it."""
    return {"pointer": pointer, "detail": detail}


def invalid(pointer: str, detail: str, title: str = "Invalid request") -> Problem:
    """422 for a request whose field `pointer` breaks a rule."""
    return Problem(422, title, detail, errors=[field_error(pointer, detail)])


def not_found(what: str) -> Problem:
    """404 for a missing resource."""
    return Problem(404, "Not found", f"{what} not found")


def found(value: T | None, what: str) -> T:
    """`value`, or 404 (`what` not found) when the lookup found nothing (None)."""
    if value is None:
        raise not_found(what)
    return value


def unknown(pointer: str, what: str, *more: str) -> Problem:
    """404 for a request that names, in field `pointer` (and the `more` pointers), something that does not exist (or
    the caller may not see): the request is well-formed (its schema cannot know which ids exist), the thing it names
    is not found."""
    detail = f"no such {what}"
    return Problem(404, "Not found", detail, errors=[field_error(p, detail) for p in (pointer, *more)])


def conflict(detail: str) -> Problem:
    """409 for a request that conflicts with the current state."""
    return Problem(409, "Conflict", detail)


def render(problem: Problem, request: Request | None = None) -> JSONResponse:
    """A problem+json response."""
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.body(instance), status_code=problem.status, media_type=MEDIA_TYPE, headers=problem.headers
    )


def _pointer(loc: tuple[Any, ...]) -> str:
    """`("body", "visits", 3, "mode")` → `/visits/3/mode` (query/path/header keep their source)."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return "/" + "/".join(str(p) for p in parts)


def install(app: FastAPI) -> None:
    """Route every error through problem+json, including validation and database outages."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return render(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [field_error(_pointer(tuple(e["loc"])), e["msg"]) for e in exc.errors()]
        return render(Problem(422, "Invalid request", "the request has invalid fields", errors=errors), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return render(Problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)), request)

    app.add_exception_handler(asyncpg.exceptions.DataError, _data_error)
    for exc_type in DB_UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)  # type: ignore[arg-type]

    @app.exception_handler(asyncpg.PostgresError)
    async def _postgres(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        # Deadlocks, serialization failures, lock and statement timeouts: the transaction rolled back, a retry works.
        if is_transient(exc):
            return await _unavailable(request, exc)
        return _internal(request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A database outage can surface wrapped (an exception group of concurrent queries): still a 503.
        if isinstance(exc, BaseExceptionGroup) and all(is_transient(e) for e in _leaves(exc)):
            return await _unavailable(request, exc)
        return _internal(request)


def _internal(request: Request) -> JSONResponse:
    """500 for a bug; the exception is logged with its traceback."""
    log.exception("unhandled error")
    return render(Problem(500, "Internal error", "an unexpected error occurred; it has been logged"), request)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions of a (nested) exception group."""
    return [leaf for e in group.exceptions for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])]


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    """422 for a value PostgreSQL cannot take (SQLSTATE class 22: out of range, malformed): a request the route's
    own rules let through, still the client's input, never a 500. Routes should bound their inputs first."""
    log.warning("request value refused by the database: %r", exc)
    detail = "a value in the request is out of range or malformed for storage"
    return render(Problem(422, "Invalid request", detail), request)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 while the database is unreachable: nothing was stored, the client may retry."""
    log.warning("database unavailable: %r", exc)
    return render(
        Problem(
            503,
            "Service unavailable",
            "the database is unavailable or busy; nothing was stored, retry later",
            headers={"Retry-After": "2"},
        ),
        request,
    )

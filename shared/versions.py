"""Optimistic concurrency: every mutable resource has a version, GET answers it as an `ETag`, writes take `If-Match`.

The version is a row's `version` column, bumped by the kit's `bump_version()` trigger on every update that changes
the row (shared/migrations/004_row_versions.sql; each service attaches it to its mutable tables), so every write
path (PATCH, state changes, imports, event handlers) moves it and none can forget to. The `ETag` is the version as a
strong entity tag (`"7"`); it validates the resource's own state (a family's ETag moves with the family's facts,
not with its students').

When `If-Match` is required (RFC 9110 §13.1.1, RFC 6585 §3) — the one rule of this platform:

* **PATCH requires it** (`IF_MATCH_REQUIRED`): a partial update is built from what the client read, the very
  "lost update" RFC 6585 names; a PATCH without it is refused with **428 Precondition Required**. `If-Match: *`
  says "whatever its state" explicitly (scripts, imports by hand).
* **State changes (POST actions, DELETE) take it optionally** (`IF_MATCH`): the server decides them against the
  current state in the same transaction (a refused transition is a 409), so without the header they stay safe;
  with it, the client says "only if nothing changed since I looked".

A stale `If-Match` is **412 Precondition Failed**, problem+json with the current `version` and the current `ETag`
header, decided after the row is locked and the caller's access checked (a caller who may not see the resource
learns nothing from it). Weak tags (`W/"7"`) never match: If-Match uses the strong comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header, Response

from shared.problems import Problem, field_error

HEADER = "If-Match"
# `*` or a comma-separated list of entity tags (weak ones allowed by the grammar; they never match).
PATTERN = r'^\s*(\*|(W/)?"[^"\x00-\x1f\x7f-\x9f]*"(\s*,\s*(W/)?"[^"\x00-\x1f\x7f-\x9f]*")*)\s*$'
_TAG = re.compile(r'(W/)?"([^"]*)"')
DESCRIPTION = (
    "The resource's `ETag` as last read (from its GET or from the write that answered it): the change applies only "
    "if the resource is still at that version, otherwise 412 with the current version. `*`: whatever its version."
)


FIRST = 1  # a row's version when it is created (the column's default): what a create answers


def etag(version: int) -> str:
    """The strong entity tag of a version: `"7"`."""
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """An `If-Match` header: `*` (any version), or the versions named by strong tags (weak or foreign tags name
    none: they can never match)."""

    any: bool
    versions: frozenset[int]


def parse(value: str) -> Precondition:
    """An `If-Match` value (already matched against PATTERN by the header's schema)."""
    if value.strip() == "*":
        return Precondition(True, frozenset())
    found = set()
    for weak, opaque in _TAG.findall(value):
        if not weak and opaque.isdigit() and len(opaque) < 19:
            found.add(int(opaque))
    return Precondition(False, frozenset(found))


def exactly(version: int) -> Precondition:
    """The precondition "still at `version`" (a version carried in a body, e.g. an offline visit's)."""
    return Precondition(False, frozenset({version}))


def stale(current: int, precondition: Precondition | None) -> bool:
    """The rule: a write is refused when it names versions and the resource is at none of them (no header, or `*`,
    never refuses: whether one is needed is the route's `IF_MATCH_REQUIRED`)."""
    return precondition is not None and not precondition.any and current not in precondition.versions


def precondition_failed(current: int) -> Problem:
    """412 with the resource's current version (body) and ETag (header)."""
    return Problem(
        412,
        "Precondition failed",
        f"the resource changed since it was read: it is at version {current}; read it again and retry",
        errors=[field_error("/header/If-Match", f"does not match the current ETag {etag(current)}")],
        headers={"ETag": etag(current)},
        extensions={"version": current},
    )


def check(current: int, precondition: Precondition | None) -> None:
    """412 unless the precondition holds for the resource's current version (call with the row locked)."""
    if stale(current, precondition):
        raise precondition_failed(current)


async def if_match(
    value: Annotated[
        str | None, Header(alias=HEADER, pattern=PATTERN, max_length=2000, description=DESCRIPTION)
    ] = None,
) -> Precondition | None:
    """FastAPI dependency: the optional `If-Match` of a state change (see the module's docstring)."""
    return None if value is None else parse(value)


async def if_match_required(
    value: Annotated[
        str | None, Header(alias=HEADER, pattern=PATTERN, max_length=2000, description=DESCRIPTION)
    ] = None,
) -> Precondition:
    """FastAPI dependency: the `If-Match` a PATCH must send; 428 without it (documented as required by the kit)."""
    if value is None:
        raise Problem(
            428,
            "Precondition required",
            "send If-Match with the resource's ETag (or `*`) so a change made meanwhile is not overwritten",
            errors=[field_error("/header/If-Match", "required")],
        )
    return parse(value)


IfMatch = Annotated[Precondition | None, Depends(if_match)]
IfMatchRequired = Annotated[Precondition, Depends(if_match_required)]


D = TypeVar("D", bound=Mapping[str, Any])


class Tagger:
    """Sets the `ETag` of a read's answer (the route returns a model or dict; FastAPI keeps the header)."""

    def __init__(self, response: Response) -> None:
        self.response = response

    def __call__(self, version: int) -> None:
        self.response.headers["ETag"] = etag(version)

    def of(self, doc: D) -> D:
        """The read's answer `doc`, its `ETag` set from the `version` it carries: `return tag.of(await read(...))`."""
        self(doc["version"])
        return doc


async def tagger(response: Response) -> Tagger:
    """FastAPI dependency of a GET that answers a versioned resource: `tag(row["version"])`."""
    return Tagger(response)


Tag = Annotated[Tagger, Depends(tagger)]


R = TypeVar("R", bound=Response)


def tagged(response: R) -> R:
    """A write's JSON answer with the `ETag` of the `version` it carries (first answers and replays alike)."""
    if 200 <= response.status_code < 300 and "etag" not in response.headers:
        body: Any = orjson.loads(bytes(response.body)) if response.body else None
        if isinstance(body, dict) and isinstance(body.get("version"), int):
            response.headers["ETag"] = etag(body["version"])
    return response

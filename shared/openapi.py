"""The services' OpenAPI documents, told from what the routes really do.

Every service gets, from the kit alone:

* operationIds that are the route functions' names (`record_visit`), unique per service (checked at start-up);
* the bearer security scheme on every operation that needs a token (`shared.auth.current_principal`);
* its error statuses as `application/problem+json` with the `Problem` schema, derived from the route: 401/403 when
  it needs a token, 404 when it has path parameters, 400 and 413 when it takes a body, 503 when it uses the
  database, 422 always (FastAPI's `HTTPValidationError` is gone); a route adds the others it raises with
  `responses=errors(409)`;
* the `Idempotency-Key` header wherever `shared.idempotency.KEY` is a dependency (the same dependency that
  makes the key work);
* optimistic concurrency wherever `shared.versions` is a dependency: `If-Match` (required on PATCH, with 428),
  412 with the current `ETag`, and the `ETag` header on the 2xx answers;
* zh/en labels of every enum as its description and `x-enum-descriptions` (written by pydantic from the
  vocabularies' own labels: `shared.contracts.common.Vocabulary`; a value without labels fails here).

Routes with other media types use `file_response(...)` (exports) and `upload(...)` (a CSV request body).

`python -m tools.docs` writes each service's document to docs/openapi/<service>.json; `--check` fails when one is stale.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared import auth, problems, versions

PROBLEM_REF = "#/components/schemas/Problem"

# What each status means for any route of this platform; routes may say more with `errors({409: "..."})`.
STATUS_TEXT: dict[int, str] = {
    400: "Bad request: the body could not be read",
    401: "Unauthorized: no bearer token, or one that is invalid or expired",
    403: "Forbidden: the caller's roles or org scope do not allow this",
    404: "Not found",
    409: "Conflict with the resource's current state",
    412: "Precondition failed: the resource changed since it was read (`If-Match`); `version` and the `ETag` "
    "header give the current version",
    413: "Content too large: the body is larger than this route accepts",
    415: "Unsupported media type",
    428: "Precondition required: send `If-Match` with the resource's ETag (or `*`)",
    422: "Invalid request: `errors` names each field at fault with a JSON pointer",
    503: "Service unavailable: the database is unavailable or busy; nothing was stored, retry after `Retry-After`",
}

# Relative: the same paths work on the service's own port and behind the gateway's one origin.
SERVERS = [{"url": "/", "description": "this service, or the gateway that routes /api/v1 to it"}]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of an error status: problem+json with the Problem schema."""
    response: dict[str, Any] = {
        "description": description or STATUS_TEXT.get(status, "Error"),
        "content": {problems.MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
    if status == 503:
        response["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
    if status == 412:
        response["headers"] = {"ETag": ETAG_HEADER}
    return response


ETAG_HEADER = {
    "description": 'the resource\'s current version as a strong entity tag (`"7"`): send it back in `If-Match`',
    "schema": {"type": "string"},
}


def errors(*statuses: int | Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error statuses: `errors(409)` or `errors({409: "the case is closed"})`."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        for code, text in status.items() if isinstance(status, Mapping) else [(status, None)]:
            out[code] = problem_response(code, text)
    return out


def file_response(*media_types: str, description: str = "The file") -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers 200 with a file (text/csv, XLSX...), not JSON."""
    content = {
        m: {"schema": {"type": "string"} if m.startswith("text/") else {"type": "string", "format": "binary"}}
        for m in media_types
    }
    return {200: {"description": description, "content": content}}


def upload(media_type: str, description: str) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads a non-JSON request body itself (e.g. a CSV file)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
    }


def operation_id(route: APIRoute) -> str:
    """The route function's name: `record_visit`, `list_cases` (FastAPI's `generate_unique_id_function`)."""
    return route.name


def api_routes(app: FastAPI) -> Iterator[Any]:
    """The routes that are part of the document, as included (full path, the app's and routers' dependencies)."""
    for context in routing.iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def check_operation_ids(app: FastAPI) -> None:
    """Refuse to start a service whose route functions share a name (their operationIds would clash)."""
    counts = Counter(operation_id(r) for r in api_routes(app) for _ in r.methods)
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        raise RuntimeError(f"operationIds must be unique; route functions named alike: {', '.join(duplicates)}")


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


def answers(*statuses: int) -> Callable[[_Dependency], _Dependency]:
    """Mark a route dependency of a module above this one (`web.get_pool`: 503): a route that depends on it can
    answer `statuses`, and its document says so. (This module cannot import those modules: they import it.)"""

    def mark(dependency: _Dependency) -> _Dependency:
        dependency.__dict__["implied_statuses"] = frozenset(statuses)
        return dependency

    return mark


def implied_statuses(route: Any) -> set[int]:
    """The error statuses a route can answer because of what it depends on (see the module's docstring)."""
    calls = set(_calls(route.dependant))
    statuses = {422}.union(*(getattr(call, "implied_statuses", ()) for call in calls))
    if versions.if_match in calls:
        statuses.add(412)
    if versions.if_match_required in calls:
        statuses |= {412, 428}
    if auth.current_principal in calls:
        statuses |= {401, 403}
    if route.dependant.path_params:
        statuses.add(404)
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        statuses |= {400, 413}  # a body that cannot be parsed at all; one larger than the route accepts
    return statuses


def polish(app: FastAPI, doc: dict[str, Any]) -> dict[str, Any]:
    """Add to FastAPI's document what it cannot know: error responses, the Problem schema."""
    routes = {(r.path_format, m.lower()): r for r in api_routes(app) for m in r.methods}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            route = routes.get((path, method))
            if route is None:
                continue
            for parameter in operation.get("parameters", []):
                _not_null(parameter)
                _plain_text(parameter.get("schema", {}), PARAMETER_TEXT)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _plain_text(media.get("schema", {}), BODY_TEXT)
            responses = operation.setdefault("responses", {})
            _versioned(route, operation)
            for status in sorted(implied_statuses(route)):
                responses.setdefault(str(status), problem_response(status))
            responses["422"] = problem_response(422)  # FastAPI's HTTPValidationError is not what we send
            operation["responses"] = dict(sorted(responses.items()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for schema in schemas.values():
        _plain_text(schema, BODY_TEXT)
    models = problems.ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(models.pop("$defs", {}))
    schemas["Problem"] = models
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    return _rename_generics(doc)


def _versioned(route: Any, operation: dict[str, Any]) -> None:
    """A route of a versioned resource: its 2xx carries `ETag`; a PATCH's `If-Match` is required (428 without)."""
    calls = set(_calls(route.dependant))
    if not calls & {versions.if_match, versions.if_match_required, versions.tagger}:
        return
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            response.setdefault("headers", {})["ETag"] = ETAG_HEADER
    if versions.if_match_required in calls:
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "header" and parameter.get("name") == versions.HEADER:
                parameter["required"] = True


def _rename_generics(doc: dict[str, Any]) -> dict[str, Any]:
    """`Page_CaseOut_` (pydantic's name for `Page[CaseOut]`) becomes `CaseOutPage` (refs included)."""
    schemas = doc["components"]["schemas"]
    names = {n: f"{m.group(2)}{m.group(1)}" for n in schemas if (m := re.fullmatch(r"(Page)_(\w+)_", n))}
    if not names:
        return doc
    doc["components"]["schemas"] = dict(sorted((names.get(n, n), s) for n, s in schemas.items()))
    refs = {f"#/components/schemas/{old}": f"#/components/schemas/{new}" for old, new in names.items()}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str) and node["$ref"] in refs:
                node["$ref"] = refs[node["$ref"]]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return doc


# What `shared.edges.refuse_bad_text` refuses, as patterns: control characters (in bodies tab, LF and CR are allowed).
# Lone surrogates are refused too; no pattern says so (JSON Schema regexes are over Unicode scalar values, which
# exclude them). Strings the route already constrains (a pattern, an enum, a format) keep theirs.
PARAMETER_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"
BODY_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def _plain_text(node: Any, pattern: str) -> None:
    """Add `pattern` to every unconstrained string schema under `node` (refs are done where they are defined), and
    to the keys of free-form objects (`dict[str, ...]`: the edge checks field names too)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & node.keys():
            node["pattern"] = pattern
        if node.get("type") == "object" and node.get("additionalProperties", False) is not False:
            node.setdefault("propertyNames", {"pattern": pattern})
        for key, value in node.items():
            if key not in ("examples", "default", "example"):
                _plain_text(value, pattern)
    elif isinstance(node, list):
        for value in node:
            _plain_text(value, pattern)


def _not_null(parameter: dict[str, Any]) -> None:
    """An optional query/header parameter `str | None` is absent or a string: there is no null in a URL or header."""
    schema = parameter.get("schema", {})
    kinds = schema.get("anyOf", [])
    if len(kinds) == 2 and {"type": "null"} in kinds:
        (kind,) = [k for k in kinds if k != {"type": "null"}]
        del schema["anyOf"]
        parameter["schema"] = {**kind, **schema}

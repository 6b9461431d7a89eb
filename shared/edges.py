"""The HTTP edge: text the database, logs and events must never see, refused with pointers before any route runs.

Body sizes are capped by FastAPI's own `max_body_size` (the app's default from settings, larger caps on the few
routes that take batches or imports), which counts the bytes as they arrive, before anything is parsed.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import Problem, field_error, render

F = TypeVar("F", bound=Callable[..., Any])

MAX_ERRORS = 20  # one bad string per field is enough to fix a request; a fuzzed body can hold thousands

# Client headers copied into logs, responses and the events a request causes.
TRACE_HEADERS = ("x-request-id", "x-correlation-id")
TRACE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")

# Only escapes (\u0000, \ud800) and raw DEL/C1 bytes can put a control character or a surrogate into a valid JSON
# string, so a body without them skips the full scan.
_SUSPECT_JSON = re.compile(rb"\\u|\x7f|\xc2[\x80-\x9f]")
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_CONTROLS = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))  # Unicode category Cc


@functools.cache
def _refused(allow: frozenset[str]) -> re.Pattern[str]:
    """One character class of what `bad_char` refuses: control characters (Cc) not allowed, and surrogates (Cs)."""
    controls = "".join(re.escape(ch) for ch in _CONTROLS if ch not in allow)
    return re.compile(f"[{controls}\\ud800-\\udfff]")


def bad_char(text: str, *, allow: frozenset[str] = _ALLOWED_CONTROLS) -> str | None:
    """What is wrong with `text` (a NUL, another control character or a lone surrogate), or None; the first such
    character decides. One regular-expression search: it runs on every string of every visit recorded."""
    found = _refused(allow).search(text)
    if found is None:
        return None
    ch = found[0]
    if "\ud800" <= ch <= "\udfff":
        return "must not contain unpaired surrogates"
    return "must not contain NUL or other control characters" if ch != "\x00" else "must not contain NUL"


def pointer_token(token: object) -> str:
    """A JSON pointer reference token (RFC 6901) that can itself be stored and shown: a field name holding what
    `bad_char` refuses (a NUL...) has those characters written as JSON escapes (`\\u0000`), so the pointer naming
    the bad field does not carry the bad text into an answer that is kept (a batch's, under its Idempotency-Key)."""
    text = _refused(_ALLOWED_CONTROLS).sub(lambda m: f"\\u{ord(m[0]):04x}", str(token))
    return text.replace("~", "~0").replace("/", "~1")


def bad_strings(value: Any, pointer: str = "") -> Iterator[dict[str, Any]]:
    """Field errors for every string (object keys too) in a parsed JSON document that `bad_char` refuses."""
    if isinstance(value, str):
        if (why := bad_char(value)) is not None:
            yield field_error(pointer or "/", why)
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{pointer}/{pointer_token(key)}"
            if (why := bad_char(key)) is not None:
                yield field_error(child, f"the field name {why}")
            yield from bad_strings(item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from bad_strings(item, f"{pointer}/{i}")


def may_hold_bad_text(body: bytes) -> bool:
    """Whether a JSON body may hold a string `bad_char` refuses (one scan of the bytes; False is certain)."""
    return _SUSPECT_JSON.search(body) is not None


def json_body_errors(body: bytes) -> list[dict[str, Any]]:
    """Field errors for control characters or lone surrogates in a JSON body; invalid JSON is left to the route."""
    if not may_hold_bad_text(body):
        return []
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return []  # FastAPI answers these itself (422 / 400)
    errors = []
    for error in bad_strings(doc):
        errors.append(error)
        if len(errors) == MAX_ERRORS:
            break
    return errors


def text_body_errors(body: bytes) -> list[dict[str, Any]]:
    """Errors for a text upload (CSV) with NUL or other control characters, by line."""
    text = TextStream()
    try:
        text.feed(body, final=True)
    except UnicodeDecodeError:
        return []  # the route says which encoding it wants
    return text.errors


class TextStream:
    """A text upload checked as its bytes arrive, for a route that reads its body as a stream (`checks_own_text`):
    `feed` each chunk (UnicodeDecodeError when it is not UTF-8), the last with `final`; `errors` then holds what
    `text_body_errors` would say of the whole body (the first line with NUL or another control character)."""

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.lines = 1  # the line the next character is on
        self.errors: list[dict[str, Any]] = []

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        text = self.decoder.decode(chunk, final)
        if not self.errors and (found := _refused(_ALLOWED_CONTROLS).search(text)) is not None:
            line = self.lines + text.count("\n", 0, found.start())
            self.errors.append(field_error("/", f"line {line} {bad_char(found[0])}"))
        self.lines += text.count("\n")

    def refuse(self) -> None:
        """Raise the app-wide check's problem when the text fed so far holds what it refuses."""
        if self.errors:
            raise _bad_text(self.errors)


def target_errors(scope: Scope) -> list[dict[str, Any]]:
    """Errors for control characters or lone surrogates in the decoded path or query parameters."""
    errors = []
    if (why := bad_char(scope["path"], allow=frozenset())) is not None:
        errors.append(field_error("/path", why))
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="surrogateescape"):
        for text in (name, value):
            if (why := bad_char(text, allow=frozenset())) is not None:
                errors.append(field_error(f"/query/{pointer_token(name)}", why))
                break
    return errors


def trace_header_errors(headers: dict[str, str]) -> list[dict[str, Any]]:
    """Errors for request/correlation id headers that are not short ids (they go into logs and events)."""
    return [
        field_error(f"/headers/{name}", "must be 1 to 128 characters: letters, digits and ._:/+=@-")
        for name in TRACE_HEADERS
        if name in headers and not TRACE_ID.fullmatch(headers[name])
    ]


def checks_own_text(endpoint: F) -> F:
    """Route decorator: the route checks its body's text itself, so `refuse_bad_text` leaves the body alone. Either
    item by item (a batch where one bad item spoils nothing else: `may_hold_bad_text` on its body, then
    `bad_strings` on each item), or as a stream as it arrives (`TextStream`: an upload of tens of MB is never held
    whole). The path and the query are still checked."""
    endpoint.__checks_own_text__ = True  # type: ignore[attr-defined]
    return endpoint


def _bad_text(errors: list[dict[str, Any]]) -> Problem:
    return Problem(
        422,
        "Invalid request",
        "text must not hold NUL, control characters or lone surrogates",
        errors=errors[:MAX_ERRORS],
    )


async def refuse_bad_text(request: Request) -> None:
    """App-wide dependency: 422 with pointers for control characters or lone surrogates in the path, the query or
    a JSON/text body, before the route's models or the database see them (PostgreSQL refuses NUL: it was a 500)."""
    errors = target_errors(request.scope)
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if getattr(endpoint, "__checks_own_text__", False):
        media = ""
    if media == "application/json" or media.endswith("+json"):
        errors += json_body_errors(await request.body())
    elif media.startswith("text/"):
        errors += text_body_errors(await request.body())
    if errors:
        raise _bad_text(errors)


class TooLargeAsProblem:
    """Pure ASGI wrapper outside FastAPI's body limiter: its plain-text 413 becomes problem+json like every error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None

        async def send_problem(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 413:
                if dict(message.get("headers", [])).get(b"content-type", b"").startswith(b"text/plain"):
                    start = message
                    return
            if start is None:
                await send(message)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                problem = Problem(413, "Content too large", "the request body is larger than this route accepts")
                response = render(problem, Request(scope))
                kept = [(k, v) for k, v in start.get("headers", []) if k not in (b"content-type", b"content-length")]
                await send({**start, "headers": [*kept, *response.raw_headers]})
                await send({"type": "http.response.body", "body": response.body})

        await self.app(scope, receive, send_problem)

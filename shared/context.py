"""Per-request / per-event context (correlation, causation, trace) carried in contextvars."""

from __future__ import annotations

import functools
import secrets
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from shared import tracing


@dataclass(frozen=True)
class TraceContext:
    """What flows from an HTTP request or a consumed event into logs and the events it causes."""

    correlation_id: str
    causation_id: str | None = None
    trace_id: str = ""
    event_id: str | None = None
    request_id: str | None = None
    span: Any = field(default=None, compare=False, repr=False)  # its OpenTelemetry span, when tracing is on

    @property
    def traceparent(self) -> str:
        """The W3C traceparent for the events this work causes: its span when traced, else a fresh span id."""
        if self.span is not None:
            return tracing.traceparent_of(self.span)
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-01"


def new_trace_id() -> str:
    """A random 128-bit W3C trace id."""
    return secrets.token_hex(16)


@functools.lru_cache(maxsize=4096)
def parse_traceparent(value: str | None) -> str | None:
    """The trace id of a W3C traceparent header, or None when it is malformed.

    Cached: the events one write caused share its traceparent, and a consumer parses it for each of them.
    """
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        try:
            int(parts[1], 16)
        except ValueError:
            return None
        return parts[1]
    return None


_current: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)


def current() -> TraceContext | None:
    """The context of the request or event being handled, if any."""
    return _current.get()


def set_current(ctx: TraceContext | None) -> object:
    """Install a context; returns a token for `reset`."""
    return _current.set(ctx)


def reset(token: object) -> None:
    """Restore the context that was current before `set_current`."""
    _current.reset(token)  # type: ignore[arg-type]


def current_or_new() -> TraceContext:
    """The current context, or for work no request or event caused (a scheduler), a fresh correlation and trace."""
    ctx = _current.get()
    if ctx is not None:
        return ctx
    span = tracing.current_span()
    trace_id = tracing.trace_id_of(span) if span is not None else new_trace_id()
    return TraceContext(correlation_id=str(uuid.uuid4()), trace_id=trace_id, span=span)


def for_event(event_id: str, correlation_id: str, traceparent: str | None, span: Any = None) -> TraceContext:
    """The context for handling a consumed event: events it causes name it as their cause (and `span` as parent)."""
    return TraceContext(
        correlation_id=correlation_id,
        causation_id=event_id,
        trace_id=tracing.trace_id_of(span) if span is not None else parse_traceparent(traceparent) or new_trace_id(),
        event_id=event_id,
        span=span,
    )


def for_batch(traces: list[TraceContext], span: Any = None) -> TraceContext:
    """The context of work done for several consumed events at once (`span` linking theirs, when traced).

    Their correlation id when they share one (else a fresh one); no single cause; their trace when they share one.
    """
    correlations = {t.correlation_id for t in traces}
    trace_ids = {t.trace_id for t in traces}
    if span is not None:
        trace_id = tracing.trace_id_of(span)
    else:
        trace_id = trace_ids.pop() if len(trace_ids) == 1 else new_trace_id()
    correlation_id = correlations.pop() if len(correlations) == 1 else str(uuid.uuid4())
    return TraceContext(correlation_id=correlation_id, trace_id=trace_id, span=span)

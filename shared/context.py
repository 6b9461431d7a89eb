"""Per-request / per-event context (correlation, causation, trace) carried in contextvars."""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class TraceContext:
    """What flows from an HTTP request or a consumed event into logs and the events it causes."""

    correlation_id: str
    causation_id: str | None = None
    trace_id: str = ""
    event_id: str | None = None
    request_id: str | None = None

    @property
    def traceparent(self) -> str:
        """A W3C traceparent with a fresh span id under this trace."""
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-01"


def new_trace_id() -> str:
    """A random 128-bit W3C trace id."""
    return secrets.token_hex(16)


def parse_traceparent(value: str | None) -> str | None:
    """The trace id of a W3C traceparent header, or None when it is malformed."""
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


def for_event(event_id: str, correlation_id: str, traceparent: str | None) -> TraceContext:
    """The context for handling a consumed event: events it causes name it as their cause."""
    return TraceContext(
        correlation_id=correlation_id,
        causation_id=event_id,
        trace_id=parse_traceparent(traceparent) or new_trace_id(),
        event_id=event_id,
    )

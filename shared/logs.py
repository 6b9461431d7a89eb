"""JSON logs carrying correlation, request and event ids (never personal data)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from shared import context

_STD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the trace context of the current request or event."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = context.current()
        if ctx is not None:
            doc["correlation_id"] = ctx.correlation_id
            doc["trace_id"] = ctx.trace_id
            if ctx.request_id:
                doc["request_id"] = ctx.request_id
            if ctx.event_id:
                doc["event_id"] = ctx.event_id
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure(service: str, level: str = "INFO") -> None:
    """Send all logs as JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel("WARNING")

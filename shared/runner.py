"""Runs a service as one process: HTTP server, relay, consumers and background tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable

import uvicorn

from shared import logs, memdebug
from shared.web import ServiceSpec, create_app, migrate

log = logging.getLogger(__name__)


def collector_policy() -> None:
    """How a service process runs Python's cyclic garbage collector.

    The collector ran every 700 net allocations: a batch upload allocates thousands of objects, many of them
    survived into older generations while in flight, and full collections then walked the whole heap (13% of the
    visits service's CPU under a city-wide campaign, sampled with py-spy). Start-up objects are frozen out of
    collections and young collections run far less often; refcounting frees the rest as before.
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def run(make_spec: Callable[[], ServiceSpec]) -> None:
    """Configure JSON logs and serve the service on its settings' host and port.

    `python -m services.<name> migrate` only creates the schema and applies the migrations, then exits (a
    Kubernetes init container runs it, so a long migration never counts against the service's startup probe).
    """
    spec = make_spec()
    s = spec.settings
    logs.configure(s.service_name, os.environ.get("LOG_LEVEL", "INFO"))
    args = sys.argv[1:]
    if args == ["migrate"]:
        applied = asyncio.run(migrate(spec))
        log.info("migrations done", extra={"applied": applied, "schema": s.db_schema})
        return
    if args:
        raise SystemExit(f"usage: python -m services.{s.service_name} [migrate]")
    collector_policy()
    memdebug.install(s.service_name)
    uvicorn.run(
        create_app(spec),
        host=s.http_host,
        port=s.http_port,
        log_config=None,  # keep our JSON logging
        access_log=False,  # requests are counted in metrics; access logs would only add noise
        timeout_graceful_shutdown=10,
    )

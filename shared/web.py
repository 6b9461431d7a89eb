"""HTTP app factory: lifespan wiring, health, metrics, request context, problem+json (CORS: the gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import admission, context, db, edges, kafka, loops, memory, openapi, outbox, problems, tracing
from shared.auth import Verifier
from shared.clock import Clock, SystemClock
from shared.inbox import InboxConsumer, Subscription
from shared.metrics import HTTP_DURATION, HTTP_REQUESTS
from shared.relay import Relay
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Background = Callable[["Runtime"], Coroutine[Any, Any, None]]


@dataclass
class ServiceSpec:
    """Everything that makes a service: its settings, schema, topics, routes and subscriptions."""

    settings: ServiceSettings
    migrations: Path
    topics: list[str] = field(default_factory=list)  # logical topics this service owns
    kit_migrations: list[Path] = field(default_factory=list)  # kit parts it keeps (shared.directory), before its own
    routers: list[APIRouter] = field(default_factory=list)
    consumers: Mapping[str, Subscription] = field(default_factory=dict)  # group -> handlers
    background: list[Background] = field(default_factory=list)
    title: str = ""
    description: str = ""
    version: str = "1.0.0"
    clock: Clock = field(default_factory=SystemClock)  # the one clock of the service (tests inject a ManualClock)


@dataclass
class Runtime:
    """The running parts of a service, on `app.state.runtime`."""

    spec: ServiceSpec
    pool: asyncpg.Pool
    relay: Relay
    consumers: list[InboxConsumer]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings

    @property
    def clock(self) -> Clock:
        return self.spec.clock


async def repeat(what: str, step: Callable[[], Coroutine[Any, Any, bool]], interval_seconds: float) -> None:
    """A background task's loop: `step()` every `interval_seconds`, and at once again while it answers True (a
    backlog); a database outage is a warning, any other failure is logged with its stack, and the loop goes on until
    it is cancelled."""
    while True:
        more = False
        try:
            more = await step()
        except asyncio.CancelledError:
            raise
        except db.DB_UNAVAILABLE as exc:
            log.warning("%s: database unavailable: %r", what, exc)
        except Exception:
            log.exception("%s failed", what)
        await asyncio.sleep(0 if more else interval_seconds)


@openapi.answers(503)
async def get_pool(request: Request) -> asyncpg.Pool:
    """FastAPI dependency: the service's database pool (async, so FastAPI needs no worker thread for it)."""
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_clock(request: Request) -> Clock:
    """FastAPI dependency: the service's clock (`ServiceSpec.clock`)."""
    clock: Clock = request.app.state.runtime.spec.clock
    return clock


CurrentClock = Annotated[Clock, Depends(get_clock)]


async def get_today(request: Request) -> date:
    """FastAPI dependency: the bureau's calendar date now (the service's clock in `bureau_time_zone`)."""
    spec: ServiceSpec = request.app.state.runtime.spec
    return spec.settings.today(spec.clock.now())


Today = Annotated[date, Depends(get_today)]


async def start_runtime(spec: ServiceSpec) -> Runtime:
    """Create the pool, migrate (or check the migrations ran), declare topics and start the relay, consumers and
    background tasks."""
    s = spec.settings
    if s.db_migrate_at_start:
        await migrate(spec)
    else:
        await db.require_migrated(s.database_url, s.db_schema, *_migration_dirs(spec))
    pool = await db.create_pool(
        s.database_url,
        s.db_schema,
        min_size=s.db_pool_min,
        max_size=s.db_pool_max,
        acquire_timeout=s.db_acquire_timeout_seconds,
    )
    await kafka.ensure_topics(s.kafka_bootstrap_servers, [kafka.topic_spec(s, s.topic(t)) for t in spec.topics])
    runtime = Runtime(
        spec=spec,
        pool=pool,
        relay=Relay(s),
        consumers=[InboxConsumer(s, pool, group, handlers) for group, handlers in spec.consumers.items()],
    )
    # The relay publishes from its own thread and event loop: on the request loop, a busy service (a campaign's
    # uploads) held each relay cycle up to ~400 ms, most of the finding → case latency (shared/loops.py).
    runtime.tasks.append(
        asyncio.create_task(loops.on_own_loop(runtime.relay.run, f"{s.service_name}-relay"), name="relay")
    )
    runtime.tasks.append(
        asyncio.create_task(outbox.watch_backlog(pool, s.service_name, s.outbox_gauge_seconds), name="outbox-gauges")
    )
    runtime.tasks.append(asyncio.create_task(memory.trim_regularly(s.memory_trim_seconds), name="memory-trim"))
    for c in runtime.consumers:
        runtime.tasks.append(asyncio.create_task(c.run(), name=f"consumer:{c.group}"))
    for bg in spec.background:
        runtime.tasks.append(asyncio.create_task(bg(runtime), name=getattr(bg, "__name__", "background")))
    return runtime


async def migrate(spec: ServiceSpec) -> list[str]:
    """Create the service's schema and apply its migrations (also run alone: `python -m services.<name> migrate`)."""
    s = spec.settings
    return await db.migrate(
        s.database_url, s.db_schema, *_migration_dirs(spec), lock_timeout=s.db_migration_lock_timeout_seconds
    )


def _migration_dirs(spec: ServiceSpec) -> list[Path]:
    return [db.KIT_MIGRATIONS, *spec.kit_migrations, spec.migrations]


async def stop_runtime(runtime: Runtime) -> None:
    """Cancel the background tasks and close the pool, waiting for each at most `shutdown_timeout_seconds`.

    A shutdown never hangs: a task still running after that is abandoned and logged with where it waits, and a pool
    whose connections are not released by then is terminated.
    """
    timeout = runtime.settings.shutdown_timeout_seconds
    runtime.relay.stop()
    for t in runtime.tasks:
        t.cancel()
    done, stuck = await asyncio.wait(runtime.tasks, timeout=timeout) if runtime.tasks else (set(), set())
    for t in done:
        if not t.cancelled():
            t.exception()  # retrieved: a task that failed before the stop was logged by itself
    for t in stuck:
        where = io.StringIO()
        t.print_stack(file=where)
        log.error("task %s did not stop: abandoned", t.get_name(), extra={"stack": where.getvalue()[-2000:]})
    try:
        await asyncio.wait_for(runtime.pool.close(), timeout)
    except TimeoutError:
        log.error("database pool did not close: terminated")
        runtime.pool.terminate()
    tracing.flush()


class RequestContext:
    """Pure ASGI middleware: request/correlation ids, traceparent, HTTP metrics by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # Client ids go into logs, response headers and events: a malformed one is refused, never copied.
        refused = edges.trace_header_errors(headers)
        request_id = (not refused and headers.get("x-request-id")) or str(uuid.uuid4())
        span = tracing.current_span()  # the FastAPI instrumentation's server span, when tracing is on
        ctx = context.TraceContext(
            correlation_id=(not refused and headers.get("x-correlation-id")) or request_id,
            trace_id=tracing.trace_id_of(span)
            if span is not None
            else context.parse_traceparent(headers.get("traceparent")) or context.new_trace_id(),
            request_id=request_id,
            span=span,
        )
        token = context.set_current(ctx)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    (b"x-correlation-id", ctx.correlation_id.encode()),
                ]
            await send(message)

        try:
            if refused:
                problem = problems.Problem(422, "Invalid request", "malformed tracing headers", errors=refused)
                await problems.render(problem, Request(scope))(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            context.reset(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
            HTTP_DURATION.labels(self.service, scope["method"], route).observe(time.perf_counter() - started)


class ServiceApp(FastAPI):
    """FastAPI with the kit's outermost wrapper (problem+json for the body limiter's 413) and an OpenAPI document
    that tells what the routes really answer (`shared.openapi`).

    The wrapper goes around whatever `build_middleware_stack` builds, also once the OpenTelemetry instrumentation
    has replaced it (that one expects FastAPI's own stack from the method it wraps).
    """

    _polished: dict[str, Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.middleware_stack is None:
            self.middleware_stack = edges.TooLargeAsProblem(self.build_middleware_stack())
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        doc = super().openapi()
        if self._polished is not doc:  # FastAPI builds it again when routes change
            self._polished = openapi.polish(self, doc)
        return doc


def create_app(spec: ServiceSpec) -> FastAPI:
    """The FastAPI app for a service, with the kit's endpoints, middleware and error handling."""
    s = spec.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("bearer tokens accepted: %s", "; ".join(app.state.verifier.kinds()))
        app.state.runtime = await start_runtime(spec)
        try:
            yield
        finally:
            await stop_runtime(app.state.runtime)

    app = ServiceApp(
        title=spec.title or f"{s.service_name} service",
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        max_body_size=s.http_max_body_bytes,  # counted as the bytes arrive; a few routes allow more
        dependencies=[Depends(edges.refuse_bad_text)],
        generate_unique_id_function=openapi.operation_id,
        servers=openapi.SERVERS,
    )
    app.state.verifier = Verifier(s)
    app.state.settings = s
    problems.install(app)
    # Inside RequestContext: a request answered 503 here still has its ids and is counted in the HTTP metrics.
    app.add_middleware(
        admission.Admission, limit=s.http_max_in_flight, queue=s.http_max_queued, wait_seconds=s.http_queue_wait_seconds
    )
    app.add_middleware(RequestContext, service=s.service_name)
    tracing.instrument_app(app, s.service_name)  # when an exporter is configured: spans per request and query

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        return {"status": "ok", **health(request.app.state.runtime)}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        checks = await readiness(request.app.state.runtime)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in spec.routers:
        app.include_router(router)
    openapi.check_operation_ids(app)
    return app


async def readiness(runtime: Runtime) -> dict[str, Any]:
    """Whether this process can serve HTTP: the database answers a query.

    Kafka is not part of it: the APIs write to the outbox and keep working while brokers are away, and taking
    every pod out of its Service because one bootstrap address is down would turn a broker restart into an
    outage. The relay's and consumers' state is on /healthz and in the metrics.
    """
    try:
        async with asyncio.timeout(2):
            await runtime.pool.fetchval("SELECT 1")
        return {"database": "ok"}
    except Exception as exc:
        return {"database": f"unavailable: {type(exc).__name__}"}


def health(runtime: Runtime | None) -> dict[str, Any]:
    """What the process is doing: the relay's role and last publish, each consumer group's last poll and error."""
    if runtime is None:
        return {}
    return {"relay": runtime.relay.health(), "consumers": {c.group: c.health() for c in runtime.consumers}}

"""Configured as operators do it (the standard `OTEL_EXPORTER_OTLP_ENDPOINT`), a service process exports its spans
over OTLP/HTTP: here to a receiver in the test that decodes the protobuf requests as a collector would."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from shared.auth import issue_token
from shared.testing.fixtures import free_port, serve, wait_for
from tests.integration.kitapp import KitSettings

pytestmark = pytest.mark.integration

CHILD = """
import sys, orjson, uvicorn
from tests.integration.kitapp import KitSettings, app
settings = KitSettings(**orjson.loads(sys.argv[1]))
uvicorn.run(app(settings), host="127.0.0.1", port=settings.http_port, log_level="warning")
"""


class Receiver:
    """An OTLP/HTTP trace receiver: every span posted to /v1/traces, with its resource's service.name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        self.app = FastAPI()
        self.app.post("/v1/traces")(self.receive)

    async def receive(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(attrs.get("service.name", ""), span) for span in scope_spans.spans]
        return Response(b"", media_type="application/x-protobuf")

    def named(self, name: str) -> list[Span]:
        return [span for _, span in self.spans if span.name == name]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    async with serve(r.app) as url:
        yield r, url


async def test_a_service_process_exports_its_trace_over_otlp(receiver, make_settings):
    collector, endpoint = receiver
    settings: KitSettings = make_settings(KitSettings, http_port=free_port())
    values: dict[str, Any] = settings.model_dump(mode="json")
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s instead of 5 s
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, orjson.dumps(values).decode(), env=env, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await wait_for(lambda: _ready(http), timeout=180)  # imports, migrations and topics, on a loaded machine
            token = issue_token(role="school_admin", org_path="/c/d1/s1")
            r = await http.post(
                "/api/v1/items",
                json={"item_id": "i1", "org_path": "/c/d1/s1", "seq": 1},
                headers={"Authorization": f"Bearer {token}", "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"},
            )
            assert r.status_code == 201, r.text
            await wait_for(lambda: collector.named("process kittest.item.events"), timeout=30)
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), 20)

    [server] = collector.named("POST /api/v1/items")
    [send] = collector.named("send kittest.item.events")
    [process] = collector.named("process kittest.item.events")
    assert {service for service, _ in collector.spans} == {"kittest"}
    # The caller's traceparent is continued: request → relay's send → consumer's process, one trace.
    assert server.trace_id.hex() == "ab" * 16 and server.parent_span_id.hex() == "cd" * 8
    assert server.kind == Span.SPAN_KIND_SERVER
    assert send.parent_span_id == server.span_id and send.kind == Span.SPAN_KIND_PRODUCER
    assert process.parent_span_id == send.span_id and process.kind == Span.SPAN_KIND_CONSUMER
    assert {send.trace_id, process.trace_id} == {server.trace_id}
    # The request's queries (asyncpg instrumentation) are children of its span; none carries parameters.
    queries = [s for _, s in collector.spans if s.parent_span_id == server.span_id and s.kind == Span.SPAN_KIND_CLIENT]
    assert queries
    assert not any("i1" in str(a.value) for s in queries for a in s.attributes)


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False

"""Admission control (shared.admission): requests beyond the limit wait their turn in order, and the ones that cannot
wait are answered 503 problem+json with Retry-After; no place is ever lost."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.admission import Admission


class Held:
    """An app whose requests stay in progress until the test lets them go; it records the order they started in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.go = asyncio.Event()

    async def work(self, request: Request) -> PlainTextResponse:
        self.started.append(request.query_params["n"])
        await self.go.wait()
        return PlainTextResponse(request.query_params["n"])

    async def healthz(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    def app(self, limit: int, queue: int, wait_seconds: float) -> Admission:
        starlette = Starlette(routes=[Route("/work", self.work), Route("/healthz", self.healthz)])
        return Admission(starlette, limit=limit, queue=queue, wait_seconds=wait_seconds)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_requests_beyond_the_limit_wait_in_order_and_beyond_the_queue_are_answered_503():
    held = Held()
    admission = held.app(limit=2, queue=2, wait_seconds=30)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admission), base_url="http://t") as client:
        first = [asyncio.create_task(client.get("/work", params={"n": n})) for n in ("1", "2")]
        await settle()
        queued = []
        for n in ("3", "4"):  # in this order
            queued.append(asyncio.create_task(client.get("/work", params={"n": n})))
            await settle()
        assert held.started == ["1", "2"] and admission.active == 2

        refused = await client.get("/work", params={"n": "5"})  # answered at once, not held
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["status"] == 503 and "busy" in refused.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200  # probes are never held back

        held.go.set()
        answers = await asyncio.gather(*first, *queued)
        assert [r.text for r in answers] == ["1", "2", "3", "4"]
        assert held.started == ["1", "2", "3", "4"]
        assert admission.active == 0 and not admission._waiting


async def test_a_request_that_waited_too_long_or_went_away_gives_no_place_away():
    held = Held()
    admission = held.app(limit=1, queue=5, wait_seconds=0.2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admission), base_url="http://t") as client:
        busy = asyncio.create_task(client.get("/work", params={"n": "1"}))
        await settle()
        gone = asyncio.create_task(client.get("/work", params={"n": "gone"}))
        await settle()
        gone.cancel()  # the client hung up while waiting
        late = await client.get("/work", params={"n": "late"})
        assert late.status_code == 503 and late.headers["retry-after"] == "1"
        assert admission.active == 1 and not admission._waiting

        held.go.set()
        assert (await busy).text == "1"
        assert admission.active == 0
        # The place is free again: the next request goes straight in.
        assert (await client.get("/work", params={"n": "next"})).text == "next"
        assert held.started == ["1", "next"] and admission.active == 0


async def test_no_limit_admits_everything():
    held = Held()
    admission = held.app(limit=0, queue=0, wait_seconds=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admission), base_url="http://t") as client:
        tasks = [asyncio.create_task(client.get("/work", params={"n": str(n)})) for n in range(50)]
        await settle()
        assert len(held.started) == 50
        held.go.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*tasks))

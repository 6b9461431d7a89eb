"""HTTP helpers for the demo: tokens, JSON calls with retries, waiting for the services to converge."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import orjson

from shared.auth import issue_token
from shared.devstack import ServiceProcess

CITY = "/620400"


class Api:
    """One service's HTTP API with a bearer token."""

    def __init__(self, base: str, token: str, *, timeout: float = 120, repeatable: bool = False) -> None:
        self.base = base
        self.repeatable = repeatable
        self.http = httpx.AsyncClient(
            base_url=base + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202), **kw: Any) -> Any:
        """A request that must succeed; 503s (a service catching up) are retried, and so are requests that can be
        repeated safely (reads, and writes with an Idempotency-Key) when the service could not be reached or died
        before answering (a restart)."""
        repeatable = method == "GET" or "Idempotency-Key" in kw.get("headers", {})
        for attempt in range(20):
            try:
                r = await self.http.request(method, path, **kw)
            except httpx.TransportError:
                if not repeatable or attempt == 19:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if r.status_code in ok:
                return r.json() if r.content else None
            if r.status_code in (502, 503, 504) and attempt < 19:
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            raise RuntimeError(f"{method} {path} → {r.status_code}: {r.text[:500]}")
        raise AssertionError("unreachable")

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def every(self, path: str, *, limit: int = 500, **params: Any) -> list[Any]:
        """Every item of a list, page after page (`{items, next_cursor}`, the kit's `Page`)."""
        items: list[Any] = []
        cursor = None
        while True:
            page = await self.get(path, limit=limit, cursor=cursor, **params)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def post(self, path: str, body: Any, *, key: str | None = None, **kw: Any) -> Any:
        """POST with an Idempotency-Key (`key`, or derived from the request when the API is `repeatable`), so that
        running the demo again replays the first answers instead of failing on what already exists."""
        if key is None and self.repeatable:
            key = hashlib.sha256(path.encode() + orjson.dumps(body)).hexdigest()
        if key is not None:
            kw["headers"] = {**kw.get("headers", {}), "Idempotency-Key": key}
        return await self.call("POST", path, json=body, **kw)

    async def close(self) -> None:
        await self.http.aclose()


def bureau_token() -> str:
    """The bureau administrator's dev token for the whole city."""
    return issue_token(role="bureau_admin", org_path=CITY, subject="demo-bureau-admin")


def metric_sum(text: str, name: str) -> float:
    """Sum of a metric's samples in a Prometheus text page."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


# Services with consumer groups; their lag gauge must be present (a restarted consumer has none until its first
# poll with partitions assigned, and a missing gauge must not read as "no lag").
CONSUMING = {"visits", "outreach", "reporting"}


async def settled(procs: list[ServiceProcess], *, timeout: float = 900, quiet_checks: int = 3) -> float:
    """Wait until every outbox is drained and every consumer group has no lag, several checks in a row."""
    started = time.monotonic()
    calm = 0
    while calm < quiet_checks:
        if time.monotonic() - started > timeout:
            raise TimeoutError("the services did not catch up in time")
        await asyncio.sleep(1.0)
        pages = await asyncio.gather(*(asyncio.to_thread(p.get, "/metrics") for p in procs))
        busy = any(
            page is None
            or "outbox_pending_events{" not in page
            or metric_sum(page, "outbox_pending_events") > 0
            or (proc.name in CONSUMING and "kafka_consumer_lag_messages{" not in page)
            or metric_sum(page, "kafka_consumer_lag_messages") > 0
            for proc, page in zip(procs, pages, strict=True)
        )
        calm = 0 if busy else calm + 1
    return time.monotonic() - started

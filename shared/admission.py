"""Admission control: a bounded number of requests inside a service process at once, the rest waiting their turn.

One event loop serves every request of a process, and its own background work besides (visits' group commit, the
consumers). Under a load beyond what the process can answer, every request admitted at once shares the loop: each
step of the group commit's transaction then waits behind a step of every request in progress (96 campaign
connections: a finding waited 160-380 ms for its own transaction, most of it in that queue). Admitted requests are
bounded instead: the next ones wait parked in arrival order, costing the loop nothing, until one in progress answers;
a request that cannot wait (the queue full, or its wait too long) is answered 503 problem+json with Retry-After
at once, before its body is read. Health, readiness and metrics are never held back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared import problems

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes answer even when the process is full
RETRY_AFTER_SECONDS = 1


class Admission:
    """Pure ASGI middleware: at most `limit` requests in progress (0: no limit); up to `queue` more wait in arrival
    order for at most `wait_seconds` each; any other is answered 503 with `Retry-After`."""

    def __init__(self, app: ASGIApp, limit: int, queue: int, wait_seconds: float) -> None:
        self.app = app
        self.limit = limit
        self.queue = queue
        self.wait_seconds = wait_seconds
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if not await self._enter():
            problem = problems.Problem(
                503,
                "Service Unavailable",
                f"the service is busy: {self.limit} requests in progress and {len(self._waiting)} waiting; "
                f"try again after {RETRY_AFTER_SECONDS} s",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await problems.render(problem, Request(scope))(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._leave()

    async def _enter(self) -> bool:
        """Take a place among the requests in progress, waiting for one if need be; False when it cannot wait."""
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return True
        if len(self._waiting) >= self.queue:
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turn
        except (TimeoutError, asyncio.CancelledError) as exc:
            if turn.done() and not turn.cancelled():  # handed a place as the wait ended: pass it on
                self._leave()
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):  # `_leave` drops cancelled turns it meets
                    self._waiting.remove(turn)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False
        return True  # the place of the request that left (`_leave` kept `active` as it was)

    def _leave(self) -> None:
        """Hand this request's place to the longest waiting one, or free it."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.active -= 1

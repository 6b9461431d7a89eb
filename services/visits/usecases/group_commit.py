"""Group commit: the one way visits are written (single visits and batches, with or without an Idempotency-Key)."""

from __future__ import annotations

import asyncio
from collections import deque

import asyncpg

from services.visits.usecases.recording import Result, Submission, record_group
from shared.clock import SYSTEM_CLOCK, Clock
from shared.db import DB_UNAVAILABLE

Waiting = tuple[Submission, "asyncio.Future[Result]"]


class VisitWriter:
    """Requests that arrive while a group is being written form the next group, stored in one transaction (a
    handful of round trips in all, Idempotency-Keys included); each request gets its own result, and its answer
    only after that transaction committed. No delay is added: under light load a group is a single request.
    A group holds up to `max_group` visits; a request of `max_group` visits or more (an offline batch) is a group of
    its own, written at once beside the writers, so big uploads neither queue behind each other nor hold up the
    single visits. A finding reaches outreach only after its group's transaction: 64 visits keep that transaction
    short (250 held a group's findings for up to ~0.7 s on a busy machine) at a few more round trips per visit."""

    def __init__(self, *, writers: int = 2, max_group: int = 64) -> None:
        self.clock: Clock = SYSTEM_CLOCK
        self.writers = writers
        self.max_group = max_group
        self._waiting: deque[Waiting] = deque()
        self._wake = asyncio.Event()
        self._running = False
        self._pool: asyncpg.Pool | None = None

    async def submit(self, submission: Submission) -> Result:
        """Queue one request's visits and wait for its result (or the group's database error)."""
        if not self._running or self._pool is None:
            raise RuntimeError("the visit writer is not running")
        if len(submission.visits) >= self.max_group:
            return await self._write(self._pool, submission)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((submission, future))
        self._wake.set()
        return await future

    async def run(self, pool: asyncpg.Pool, clock: Clock) -> None:
        """Write groups until cancelled (a background task of the service), with the service's clock."""
        self.clock = clock
        self._pool = pool
        self._running = True
        tasks = [asyncio.create_task(self._write_groups(pool)) for _ in range(self.writers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self._running = False
            for t in tasks:
                t.cancel()
            _fail(list(self._waiting), ConnectionError("the service is stopping; nothing was stored"))
            self._waiting.clear()

    async def _next_group(self) -> list[Waiting]:
        """The waiting requests up to `max_group` visits (at least one request, however big)."""
        while not self._waiting:
            self._wake.clear()
            await self._wake.wait()
        group = [self._waiting.popleft()]
        size = len(group[0][0].visits)
        while self._waiting and size + len(self._waiting[0][0].visits) <= self.max_group:
            size += len(self._waiting[0][0].visits)
            group.append(self._waiting.popleft())
        return group

    async def _write_groups(self, pool: asyncpg.Pool) -> None:
        while True:
            group = await self._next_group()
            try:
                async with pool.acquire() as conn, conn.transaction():
                    results = await record_group(conn, [s for s, _ in group], self.clock)
            except DB_UNAVAILABLE as exc:
                _fail(group, exc)
                continue
            except Exception as exc:
                if len(group) == 1:
                    _fail(group, exc)
                else:  # one request broke the group's transaction: write each alone so only that one fails
                    await self._write_alone(pool, group)
                continue
            except BaseException:
                _fail(group, ConnectionError("the service is stopping; nothing was stored"))
                raise
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write(self, pool: asyncpg.Pool, submission: Submission) -> Result:
        """One request in a transaction of its own."""
        async with pool.acquire() as conn, conn.transaction():
            [result] = await record_group(conn, [submission], self.clock)
        return result

    async def _write_alone(self, pool: asyncpg.Pool, group: list[Waiting]) -> None:
        for submission, future in group:
            try:
                result = await self._write(pool, submission)
            except Exception as exc:
                _fail([(submission, future)], exc)
            else:
                if not future.done():
                    future.set_result(result)


def _fail(group: list[Waiting], exc: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)

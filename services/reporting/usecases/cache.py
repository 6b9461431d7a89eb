"""A short-lived in-process cache of serialised answers, with single flight per key.

The figures only change when the refresher runs (every `refresh_interval_seconds`), so answering the same
(node, campaign) from memory for up to `summary_cache_seconds` adds at most that much staleness and keeps the
whole-city summary cheap at hundreds of requests per second. An expired answer is still served while one
background task recomputes it (stale-while-revalidate), so no request waits for the database on a hot key.
Scope checks happen before the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

MAX_ENTRIES = 5000


class AnswerCache:
    """key -> (expires_at, bytes); concurrent misses of one key share one computation."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, bytes]] = {}
        self._inflight: dict[Any, asyncio.Future[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: Any, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached answer for key, or compute (once) and keep it for ttl seconds."""
        if self.ttl <= 0:
            return await compute()
        hit = self._data.get(key)
        if hit is not None:
            if hit[0] <= time.monotonic() and key not in self._inflight:
                self._start(key, compute)  # revalidate in the background; this caller gets the stale answer
            return hit[1]
        running = self._inflight.get(key) or self._start(key, compute)
        return await asyncio.shield(running)

    def _start(self, key: Any, compute: Callable[[], Awaitable[bytes]]) -> asyncio.Future[bytes]:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut

        async def run() -> None:
            try:
                value = await compute()
                if len(self._data) >= MAX_ENTRIES:
                    self._data.clear()
                self._data[key] = (time.monotonic() + self.ttl, value)
                fut.set_result(value)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: waiters get it, nobody else must
            finally:
                del self._inflight[key]

        self._tasks.add(task := asyncio.create_task(run()))
        task.add_done_callback(self._tasks.discard)
        return fut

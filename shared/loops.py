"""Work that must not wait for a busy request loop: a coroutine run on its own thread and its own event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def on_own_loop(make: Callable[[], Coroutine[Any, Any, T]], name: str) -> T:
    """Run `make()` on a new event loop in a thread of its own until it ends; its result or exception is this
    coroutine's. Cancelling the caller cancels it there, and the caller returns once it has finished (its `finally`
    blocks ran on its own loop).

    For the outbox relay: a service's request loop can be busy for hundreds of milliseconds at a time (a batch
    upload validated, a page of findings built), and every callback on it waits that long. Its own loop only shares
    the interpreter lock, which CPython hands over at least every `sys.getswitchinterval()` (5 ms). What runs there
    must open its own connections (asyncpg and aiokafka objects belong to the loop that made them) and may touch the
    rest of the process only through thread-safe objects (the metrics registry, plain attributes, logging).

    The new loop is of the caller's kind (uvloop's under uvicorn): on the standard library's loop the relay thread
    spent more CPU on the loop's own machinery (selector, handles, transports) than on its rows.
    """
    caller = asyncio.get_running_loop()
    kind = type(caller)
    done: asyncio.Future[T] = caller.create_future()
    running: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Task[T]]] = concurrent.futures.Future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if isinstance(error, asyncio.CancelledError):
            done.cancel()
        elif error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    async def body() -> T:
        task = asyncio.current_task()
        assert task is not None
        running.set_result((asyncio.get_running_loop(), task))
        return await make()

    def thread() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            with asyncio.Runner(loop_factory=kind) as runner:
                result = runner.run(body())
        except BaseException as exc:  # handed to the caller as it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits any more
            caller.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=thread, name=name, daemon=True).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        if not done.done():
            loop, task = await asyncio.wrap_future(running)
            with contextlib.suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(task.cancel)
            with contextlib.suppress(BaseException):
                await done
        raise

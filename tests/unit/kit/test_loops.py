"""Work on its own thread and event loop (shared.loops): the relay keeps publishing while the request loop is busy."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared import loops


async def test_the_result_and_the_error_come_back_from_the_other_thread():
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert await loops.on_own_loop(where, "worker") == "worker"

    async def fails() -> None:
        raise ValueError("the field at fault")

    with pytest.raises(ValueError, match="the field at fault"):
        await loops.on_own_loop(fails, "worker")


async def test_it_runs_while_the_callers_loop_is_blocked():
    ticked = threading.Event()

    async def ticks() -> None:
        await asyncio.sleep(0.01)  # a timer and a callback: its loop turns while the caller's cannot
        ticked.set()

    task = asyncio.create_task(loops.on_own_loop(ticks, "worker"))
    await asyncio.sleep(0)  # the thread is started
    # The caller's loop is stuck (CPU work, a blocking call): on the same loop `ticks` could never run now.
    assert ticked.wait(timeout=30)
    await task


async def test_cancelling_the_caller_cancels_it_and_waits_for_its_cleanup():
    started, cleaned = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)  # cleanup that needs its loop (closing a producer, a connection)
            cleaned.set()

    task = asyncio.create_task(loops.on_own_loop(forever, "worker"))
    await asyncio.to_thread(started.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


def test_its_loop_is_of_the_callers_kind():
    """Under uvicorn the caller's loop is uvloop's, and so is the relay's: on the standard library's loop the relay
    thread spent about a third more CPU per event (bench/outreach_reaction.py)."""
    uvloop = pytest.importorskip("uvloop")

    async def kind() -> type:
        return type(asyncio.get_running_loop())

    async def main() -> tuple[type, type]:
        return type(asyncio.get_running_loop()), await loops.on_own_loop(kind, "worker")

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        caller, own = runner.run(main())
    assert caller is own is uvloop.Loop

"""A forked replay lane's answer as the parent reads it: its result, its failure, or its death before answering."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

import pytest

from services.reporting.usecases.rebuild import _receive


def _pipe() -> tuple[Connection, Connection]:
    return multiprocessing.get_context("fork").Pipe(duplex=False)


async def test_a_lane_that_answered_gives_its_result() -> None:
    receive, send = _pipe()
    send.send(("done", {"events": 3}))
    send.close()
    assert await _receive(receive) == {"events": 3}


async def test_a_lane_that_failed_raises_its_traceback() -> None:
    receive, send = _pipe()
    send.send(("failed", "Traceback ...\nValueError: bad record"))
    send.close()
    with pytest.raises(RuntimeError, match="a replay lane failed") as failed:
        await _receive(receive)
    assert "ValueError: bad record" in str(failed.value)


async def test_a_lane_that_died_without_answering_raises_instead_of_waiting_forever() -> None:
    receive, send = _pipe()
    send.close()  # the lane's end closed with nothing sent: what its death leaves
    with pytest.raises(RuntimeError, match="exited without an answer"):
        await _receive(receive)

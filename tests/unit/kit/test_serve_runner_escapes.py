"""The access matrix's intermittent plain 500 on committees' dissolve, diagnosed: the test's own timeout, not the
service. pytest-timeout raises `Failed: Timeout` (a BaseException) by SIGALRM in whatever frame runs; in a service
served in the test's thread that can be a request handler, and uvicorn answers any BaseException with a plain-text
`Internal Server Error` 500 and carries on — the test then failed on that "500" instead of on its timeout.
`serve` now raises the runner's exception again when it ends. Without the fix this test fails: nothing is raised."""

from __future__ import annotations

import time

import httpx
import pytest
from _pytest.outcomes import Failed
from fastapi import FastAPI

from shared.testing.fixtures import serve


def blocking_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/committees/{committee_id}/dissolve")
    async def dissolve(committee_id: str) -> dict[str, str]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # a loaded machine: the handler still runs when the test's time is up
            time.sleep(0.05)  # noqa: ASYNC251 (blocking on purpose: the loop is busy when the timer strikes)
        return {"committee_id": committee_id}

    return app


@pytest.mark.timeout(5)  # start-up takes well under 5 s; the handler blocks past it
async def test_a_timeout_that_strikes_inside_a_served_request_fails_the_test_as_a_timeout() -> None:
    answers: list[httpx.Response] = []
    with pytest.raises(Failed, match="Timeout"):
        async with serve(blocking_app()) as url, httpx.AsyncClient(base_url=url) as http:
            answers.append(await http.post("/api/v1/committees/c1/dissolve"))
    # What the matrix saw: the runner's exception, turned by uvicorn into a plain 500 (it is now raised as well).
    assert [(r.status_code, r.text) for r in answers] == [(500, "Internal Server Error")]

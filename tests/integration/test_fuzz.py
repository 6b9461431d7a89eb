"""Fuzz every operation of the four services' OpenAPI documents with schemathesis, against the real stack.

The services run in this process on real ports with their own schemas and topics; schemathesis (its CLI, as a user
would run it) generates requests from each document (boundary values, NUL bytes, huge numbers, stateful chains)
for a fixed time budget per service, the four side by side, and fails unless the document tells the truth:
no 5xx, no status code, content type or response body the document does not declare, every schema-valid request
accepted and every schema-invalid one refused (CHECKS). What JSON Schema cannot say (paging cursors are the
server's own values, an Idempotency-Key names one request, rules across fields or against the clock) the
documents say in words and the fuzzer's client obeys, with the services' own rule functions
(tests/integration/fuzz_hooks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.committees.app import create as committees
from services.committees.settings import Settings as CommitteesSettings
from services.outreach.app import create as outreach
from services.outreach.settings import OutreachSettings
from services.reporting.app import create as reporting
from services.reporting.settings import ReportingSettings
from services.visits.app import create as visits
from services.visits.settings import VisitsSettings
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.testing.fixtures import serve

# Per service, the four in parallel: about a minute of the default run. FUZZ_SECONDS=600 FUZZ_EXAMPLES=200
# FUZZ_SEED=<n> (FUZZ_SERVICES=visits,outreach to pick some) explore further than CI does.
BUDGET_SECONDS = int(os.environ.get("FUZZ_SECONDS", "40"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))  # per operation and phase
# The run's own budget plus starting, schema loading and the last requests (pytest-timeout's default is 300 s; a
# timed-out test would drop the services' schemas under a fuzzer still running).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(4 * (BUDGET_SECONDS + 120))]
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
)
# Services held to every check (positive data accepted, statuses documented).
STRICT: set[str] = {"committees", "visits", "outreach", "reporting"}
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))  # fixed, so a failure reproduces; change it to explore further

CLOCK = ManualClock()  # outreach's time stands still during the run; the hooks judge client times against it
SERVICES: dict[str, tuple[type[Any], Callable[[Any], Any]]] = {
    "committees": (CommitteesSettings, committees),
    "visits": (VisitsSettings, visits),
    "outreach": (OutreachSettings, lambda s: outreach(s, CLOCK)),
    "reporting": (ReportingSettings, reporting),
}


def schemathesis() -> str:
    """The schemathesis CLI of this virtualenv."""
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is in requirements.lock (dev group); run scripts/bootstrap.sh"
    return found


async def fuzz(name: str, url: str, token: str, work: Path) -> tuple[str, int, str]:
    """One schemathesis run against one service; its exit status and output."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:  # fetched here: the loop is busy later
        schema = work / f"{name}.openapi.json"
        schema.write_bytes((await http.get("/openapi.json")).raise_for_status().content)
    proc = await asyncio.create_subprocess_exec(
        schemathesis(),
        "run",
        str(schema),
        *("--url", url),
        *("--header", f"Authorization: Bearer {token}"),
        *("--checks", ",".join(CHECKS) if name in STRICT else "not_a_server_error"),
        *("--max-time", str(BUDGET_SECONDS)),
        *("--max-examples", str(EXAMPLES)),
        *("--seed", str(SEED)),
        *("--workers", "1"),  # threads parse source concurrently; CPython 3.11 can crash on that (SystemError)
        *("--request-timeout", "30"),
        *("--report", "junit", "--report-dir", str(work / name)),
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=work,  # its example cache (.schemathesis/) stays out of the repository
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks", "FUZZ_NOW": CLOCK.now().isoformat()},
    )
    out, _ = await proc.communicate()
    return name, proc.returncode or 0, out.decode(errors="replace")


async def test_every_operation_answers_as_documented(make_settings, tmp_path: Path):
    token = issue_token(role="bureau_admin", org_path="/620400", subject="fuzzer")  # the widest scope
    async with contextlib.AsyncExitStack() as running:
        urls = {}
        for name, (settings_class, create) in SERVICES.items():
            if name not in os.environ.get("FUZZ_SERVICES", name).split(","):
                continue
            settings = make_settings(settings_class)
            urls[name] = await running.enter_async_context(serve(create(settings)))
        # One at a time: four fuzzers at once on two cores spent their whole budget loading the document and in the
        # coverage phase, and one of them then ran no case at all.
        results = [await fuzz(name, url, token, tmp_path) for name, url in urls.items()]
    failed = {name: out[-6000:] for name, code, out in results if code != 0}
    assert not failed, "\n\n".join(f"== {name}\n{out}" for name, out in failed.items())
    for name, _, out in results:
        assert "generated" in out and "passed" in out, f"{name} ran no test cases:\n{out[-3000:]}"

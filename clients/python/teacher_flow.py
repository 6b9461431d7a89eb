"""A teacher's flow through the gateway with the client generated from visits' OpenAPI (openapi-python-client).

`tests/e2e/test_typed_clients.py` generates the client (`scripts/clients.sh python`), checks this file against it
with `mypy --strict --disallow-any-expr` (so every value used here has a precise type: no Any), then runs `run`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import httpx
from hss_visits_client import AuthenticatedClient
from hss_visits_client.api.assignments import list_assignments
from hss_visits_client.api.visits import get_visit, record_visit
from hss_visits_client.models import AssignmentStatus, MissReason, Problem, VisitIn, VisitMode, VisitStatus


@dataclass(frozen=True)
class Refusal:
    """What a typed problem+json said."""

    http: int
    status: int
    title: str
    pointers: list[str]


@dataclass(frozen=True)
class Outcome:
    assignment_id: str
    visit_id: str
    replayed_visit_id: str
    read_back: tuple[str, str, str]  # visit_id, assignment_id, status
    invalid: Refusal
    not_found: Refusal


def refusal(http: int, problem: Problem) -> Refusal:
    errors = problem.errors if isinstance(problem.errors, list) else []
    return Refusal(http, problem.status, problem.title, [e.pointer for e in errors])


def run(base_url: str, token: str, campaign_id: str, visited_on: dt.date) -> Outcome:
    """List my open assignments, take the last one, get a 422 for an incomplete completed visit, record it as
    missed with an Idempotency-Key (twice: the same visit), read it back, and get a 404 for a visit that is not."""
    with AuthenticatedClient(base_url=base_url, token=token, timeout=httpx.Timeout(60.0)) as client:
        listed = list_assignments.sync_detailed(
            campaign_id, client=client, status=AssignmentStatus.ASSIGNED, limit=100
        ).parsed
        if listed is None or isinstance(listed, Problem):
            raise RuntimeError(f"list_assignments: {listed}")
        mine = listed.items[-1]
        assignment_id: str = mine.assignment_id

        incomplete = VisitIn(
            assignment_id=assignment_id,
            status=VisitStatus.COMPLETED,
            visited_on=visited_on,
            mode=VisitMode.IN_HOME,
            duration_minutes=40,
        )
        refused = record_visit.sync_detailed(client=client, body=incomplete, idempotency_key=f"py-no-{assignment_id}")
        if not isinstance(refused.parsed, Problem):
            raise RuntimeError(f"a completed visit without its checklist was accepted: {refused.parsed}")
        invalid = refusal(refused.status_code.value, refused.parsed)

        missed = VisitIn(
            assignment_id=assignment_id,
            status=VisitStatus.MISSED,
            visited_on=visited_on,
            miss_reason=MissReason.FAMILY_UNAVAILABLE,
        )
        key = f"py-visit-{assignment_id}"
        recorded = record_visit.sync_detailed(client=client, body=missed, idempotency_key=key).parsed
        again = record_visit.sync_detailed(client=client, body=missed, idempotency_key=key).parsed
        if recorded is None or isinstance(recorded, Problem) or again is None or isinstance(again, Problem):
            raise RuntimeError(f"record_visit: {recorded}, {again}")

        read = get_visit.sync_detailed(recorded.visit_id, client=client).parsed
        if read is None or isinstance(read, Problem):
            raise RuntimeError(f"get_visit: {read}")

        missing = get_visit.sync_detailed("no-such-visit", client=client)
        if not isinstance(missing.parsed, Problem):
            raise RuntimeError(f"a visit that does not exist was found: {missing.parsed}")

        return Outcome(
            assignment_id=assignment_id,
            visit_id=recorded.visit_id,
            replayed_visit_id=again.visit_id,
            read_back=(read.visit_id, read.assignment_id, str(read.status)),
            invalid=invalid,
            not_found=refusal(missing.status_code.value, missing.parsed),
        )

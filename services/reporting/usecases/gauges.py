"""Business gauges on /metrics: coverage, cases, referrals past deadline, figures' age (no person labels)."""

from __future__ import annotations

import math
import time

from prometheus_client import Gauge

from services.reporting.store import reads
from shared.contracts.common import Department
from shared.db import Conn

COVERAGE = Gauge(
    "reporting_coverage_ratio",
    "Families visited / families assigned, per district and campaign.",
    ["district", "campaign"],
)
CASES_OPEN = Gauge("reporting_cases_open", "Open care cases per district.", ["district"])
CASES_OVERDUE = Gauge(
    "reporting_cases_overdue", "Open cases past their first-contact deadline, per district.", ["district"]
)
REFERRALS_PAST_DEADLINE = Gauge(
    "reporting_referrals_unacknowledged_overdue",
    "Referrals a department has not acknowledged by their deadline (escalated, still unanswered), per department.",
    ["department"],
)
FIGURES_AGE = Gauge(
    "reporting_figures_age_seconds", "Seconds since the figures were last refreshed (NaN before the first refresh)."
)
_refreshed_at: float | None = None
# Read at scrape time: the age keeps growing while refreshes fail or stall, the value the alert needs.
FIGURES_AGE.set_function(lambda: math.nan if _refreshed_at is None else max(time.time() - _refreshed_at, 0.0))


async def update(conn: Conn) -> None:
    """Set the gauges from the district rows and the referrals of the read model."""
    global _refreshed_at
    _refreshed_at = await reads.get_refreshed_at(conn)
    past_deadline = await reads.get_referrals_past_deadline(conn)
    for department in Department:  # every department has a series: 0, not absent, when all is answered
        REFERRALS_PAST_DEADLINE.labels(department.value).set(past_deadline.get(department.value, 0))
    values: dict[tuple[str, str], dict[str, float]] = {}
    for r in await reads.list_district_gauges(conn):
        values.setdefault((r["node"], r["scope"]), {})[r["metric"]] = float(r["value"])
    districts = {node for node, _ in values}
    for (node, scope), v in values.items():
        district = node.rsplit("/", 1)[-1]
        if scope:
            assigned = v.get("families_assigned", 0)
            if assigned:
                COVERAGE.labels(district, scope).set(v.get("families_visited", 0) / assigned)
        else:
            CASES_OPEN.labels(district).set(v.get("cases_open", 0))
            CASES_OVERDUE.labels(district).set(v.get("cases_overdue", 0))
    for node in districts:  # a district whose cases all closed has no row left: show 0, not a stale value
        district = node.rsplit("/", 1)[-1]
        if (node, "") not in values:
            CASES_OPEN.labels(district).set(0)
            CASES_OVERDUE.labels(district).set(0)

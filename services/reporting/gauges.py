"""Business gauges on /metrics: coverage and open/overdue cases per district (no student-level labels)."""

from __future__ import annotations

from prometheus_client import Gauge

from services.reporting.store import reads
from services.reporting.store.reads import Conn

COVERAGE = Gauge(
    "reporting_coverage_ratio",
    "Families visited / families assigned, per district and campaign.",
    ["district", "campaign"],
)
CASES_OPEN = Gauge("reporting_cases_open", "Open care cases per district.", ["district"])
CASES_OVERDUE = Gauge(
    "reporting_cases_overdue", "Open cases past their first-contact deadline, per district.", ["district"]
)


async def update(conn: Conn) -> None:
    """Set the gauges from the district rows of the read model."""
    values: dict[tuple[str, str], dict[str, float]] = {}
    for r in await reads.district_gauges(conn):
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

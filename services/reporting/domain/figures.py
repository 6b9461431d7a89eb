"""Assemble the materialised metric rows of one node into the indicator document (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from shared.contracts.committees import LectureTopic, TeamRole
from shared.contracts.common import Category, Department, GuidanceTopic, Severity, VisitMode
from shared.contracts.outreach import ReferralStatus, SpecialGroup

# Metrics that belong to a campaign (scope = campaign id); everything else is the cooperation structure,
# which only exists in scope '' (all campaigns).
CAMPAIGN_METRICS = frozenset(
    {
        "assignments",
        "visits_completed",
        "visits_missed",
        "visits_by_mode",
        "visits_daily",
        "checklist_yes",
        "checklist_answered",
        "visits_flagged",
        "flags",
        "guidance_topics",
        "findings",
        "findings_daily",
        "cases_total",
        "cases_open",
        "cases_closed",
        "cases_overdue",
        "cases_closure_pending",
        "cases_opened_daily",
        "cases_closed_daily",
        "finding_to_case_hours",
        "case_to_contact_hours",
        "referrals",
        "teachers_assigned",
        "teachers_active",
        "families_assigned",
        "families_visited",
    }
)
DAILY_METRICS = ("visits_daily", "findings_daily", "cases_opened_daily", "cases_closed_daily")
REFERRAL_STATES = tuple(s.value for s in ReferralStatus)  # the contract's states of a referral, in their order
ORG_LEVELS = ("district", "school", "grade", "class")

ATTENDANCE_CHANNELS = ("online", "in_person", "unknown")  # unknown: attendance recorded before the channel was
TOP_LECTURERS = 20  # the lecturers with the most lectures, listed per org unit

Metrics = dict[tuple[str, str], float]
MetricsIn = Mapping[tuple[str, str], float]

# The percentiles' measures are counted per slot: the hours rounded to three significant digits, but never finer
# than a hundredth, the precision the figures show hours in (0.01 h below 10 h, 0.1 h below 100 h, 1 h below 1,000 h:
# at most 0.5 % off). A metric row per slot (dim: the rounded hours), its value the cases in it (store/refresh.py
# PER_LEAF_PARTS). Counts add up over leaves and nodes where sorted values do not, and a node holds at most ~900 slots
# a decade of hours, whatever its history.
HOUR_SLOT_DIGITS = 3
HOUR_METRICS = ("finding_to_case_hours", "case_to_contact_hours")


def ratio(num: float, den: float) -> float | None:
    """num/den rounded to 4 places, None when there is nothing to divide by."""
    return round(num / den, 4) if den else None


def _n(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def merge_scopes(campaign_rows: MetricsIn, all_rows: MetricsIn, campaign_id: str) -> Metrics:
    """Campaign-bound metrics from the campaign's scope, the cooperation structure from scope ''."""
    if not campaign_id:
        return dict(all_rows)
    out = {k: v for k, v in campaign_rows.items() if k[0] in CAMPAIGN_METRICS}
    out.update({k: v for k, v in all_rows.items() if k[0] not in CAMPAIGN_METRICS})
    return out


def parent_school_attendance(m: MetricsIn) -> dict[str, Any]:
    """Enrolled and attending guardians of held sessions, and how they attended: online vs in person."""
    enrolled, attended = _n(m.get(("session_enrolled", ""), 0)), _n(m.get(("attendance_present", ""), 0))
    channels = {c: _n(m.get(("attendance_by_channel", c), 0)) for c in ATTENDANCE_CHANNELS}
    return {
        "enrolled": enrolled,
        "attended": attended,
        "rate": ratio(attended, enrolled),
        "by_channel": channels,
        "online_share": ratio(channels["online"], channels["online"] + channels["in_person"]),
    }


def lecturer_group(m: MetricsIn) -> dict[str, Any]:
    """The lecturer group: current members, the lecturers with most lectures (ties by id), and the lectures' reach
    (audience head-count and audience org units, summed over lectures)."""
    by_lecturer = sorted(((-v, d) for (mm, d), v in m.items() if mm == "lectures_by_lecturer" and d), key=tuple)
    return {
        "members": _n(m.get(("lecturers", ""), 0)),
        "lecturers_lecturing": len(by_lecturer),
        "top_lecturers": {d: _n(-v) for v, d in by_lecturer[:TOP_LECTURERS]},
        "reach": {
            "lectures": _n(sum(v for (mm, _), v in m.items() if mm == "lectures")),
            "audience": _n(sum(v for (mm, _), v in m.items() if mm == "lecture_audience")),
            "org_units": _n(m.get(("lecture_reach_units", ""), 0)),
        },
    }


def percentile_cont(counts: Mapping[float, float], q: float) -> float | None:
    """The q-quantile of a multiset given as value -> how many times it occurs, interpolated between the two values
    either side of rank q·(n−1) as PostgreSQL's `percentile_cont` does; None when it is empty."""
    values = sorted((v, int(c)) for v, c in counts.items() if c > 0)
    n = sum(c for _, c in values)
    if not n:
        return None
    rank = q * (n - 1)
    low = int(rank)  # rank >= 0: the floor
    seen, below, above = 0, None, None
    for v, c in values:
        seen += c
        if below is None and seen > low:
            below = v
        if seen > low + 1 or seen == n:
            above = v
            break
    assert below is not None and above is not None
    return below + (rank - low) * (above - below)


def hour_percentiles(slots: Mapping[float, float]) -> dict[str, float | None]:
    """Median and p90 in hours of a measure counted per slot (hours -> cases; HOUR_SLOT_DIGITS)."""
    return {name: percentile_cont(slots, q) for name, q in (("median", 0.5), ("p90", 0.9))}


def figures(m: MetricsIn, checklist_items: list[str] | None = None) -> dict[str, Any]:
    """The indicator document of one node and campaign."""

    def g(metric: str, dim: str = "") -> int | float:
        return _n(m.get((metric, dim), 0))

    def dims(metric: str) -> dict[str, int | float]:
        return {d: _n(v) for d, v in sorted((d, v) for (mm, d), v in m.items() if mm == metric)}

    def hours(metric: str) -> dict[str, float | None]:  # (metric, 'median'|'p90'): store/reads.py, from the slots
        return {q: None if (v := m.get((metric, q))) is None else round(v, 2) for q in ("median", "p90")}

    by_cat: dict[str, dict[str, int | float]] = {c.value: {s.value: 0 for s in Severity} for c in Category}
    for dim, v in dims("findings").items():
        cat, _, sev = dim.partition("|")
        by_cat.setdefault(cat, {})[sev] = v
    by_cat_total = {c: sum(s.values()) for c, s in by_cat.items()}
    by_sev = {s.value: sum(by_cat[c].get(s.value, 0) for c in by_cat) for s in Severity}

    items = list(dict.fromkeys([*(checklist_items or []), *dims("checklist_answered"), *dims("checklist_yes")]))
    checklist = {
        i: {
            "yes": g("checklist_yes", i),
            "answered": g("checklist_answered", i),
            "compliance": ratio(g("checklist_yes", i), g("checklist_answered", i)),
        }
        for i in items
    }
    referrals: dict[str, dict[str, int | float]] = {d.value: {s: 0 for s in REFERRAL_STATES} for d in Department}
    for dim, v in dims("referrals").items():
        dep, _, state = dim.partition("|")
        referrals.setdefault(dep, {})[state] = v

    units = {lvl: g("org_units", lvl) for lvl in ORG_LEVELS}
    with_committee = {lvl: g("units_with_committee", lvl) for lvl in ORG_LEVELS}
    lectures = {
        t.value: {"lectures": g("lectures", t.value), "audience": g("lecture_audience", t.value)} for t in LectureTopic
    }
    families_assigned, families_visited = g("families_assigned"), g("families_visited")
    return {
        "teachers": {"assigned": g("teachers_assigned"), "active": g("teachers_active")},
        "families": {
            "assigned": families_assigned,
            "visited": families_visited,
            "coverage": ratio(families_visited, families_assigned),
        },
        "assignments": g("assignments"),
        "visits": {
            "completed": g("visits_completed"),
            "missed": g("visits_missed"),
            "by_mode": {mode.value: g("visits_by_mode", mode.value) for mode in VisitMode},
        },
        "checklist": checklist,
        "requirements": {
            "flagged_visits": g("visits_flagged"),
            "flagged_share": ratio(g("visits_flagged"), g("visits_completed")),
            "flags_by_item": dims("flags"),
        },
        "guidance_topics": {t.value: g("guidance_topics", t.value) for t in GuidanceTopic},
        "findings": {
            "total": sum(by_cat_total.values()),
            "by_category": by_cat_total,
            "by_severity": by_sev,
            "by_category_severity": by_cat,
        },
        "special_groups": {grp.value: g("special_group", grp.value) for grp in SpecialGroup},
        "cases": {
            "opened": g("cases_total"),
            "open": g("cases_open"),
            "closed": g("cases_closed"),
            "overdue": g("cases_overdue"),
            "closure_pending": g("cases_closure_pending"),
            "finding_to_case_hours": hours("finding_to_case_hours"),
            "case_to_first_contact_hours": hours("case_to_contact_hours"),
        },
        "referrals": referrals,
        "structure": {
            "org_units": units,
            "units_with_active_committee": with_committee,
            "committee_share": {lvl: ratio(with_committee[lvl], units[lvl]) for lvl in ("school", "grade", "class")},
            "active_committees": g("committees_active"),
            "sessions_held": g("sessions_held"),
            "attendance": parent_school_attendance(m),
            "instructor_teams": g("teams"),
            "team_members_by_role": {r.value: g("team_members", r.value) for r in TeamRole},
            "lectures_by_topic": lectures,
            "lecturer_group": lecturer_group(m),
        },
    }


def series(m: MetricsIn) -> list[dict[str, Any]]:
    """Per-day counts (visits, findings, cases opened and closed), oldest day first."""
    days: dict[str, dict[str, Any]] = defaultdict(dict)
    for (metric, dim), v in m.items():
        if metric in DAILY_METRICS:
            days[dim][metric.removesuffix("_daily")] = _n(v)
    return [
        {
            "day": d,
            "visits": days[d].get("visits", 0),
            "findings": days[d].get("findings", 0),
            "cases_opened": days[d].get("cases_opened", 0),
            "cases_closed": days[d].get("cases_closed", 0),
        }
        for d in sorted(days)
    ]


def flatten(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested figures document as (dotted.name, value) rows, for exports."""
    rows: list[tuple[str, Any]] = []
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(flatten(v, name + "."))
        else:
            rows.append((name, v))
    return rows

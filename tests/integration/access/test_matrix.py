"""The authorization matrix: every operation of the four OpenAPI documents × role × position of the caller (the
whole city, the parent district, the school, its sibling school, a token path holding `%`, another district) plus
requests without a token, with an expired one and with a wrong audience, against the four services running
together on the real stack. One seeded city, many requests.

Each operation names who may call it; everybody else must get 401/403/404 (never a 2xx), and a list must hold
nothing outside the caller's subtree (no leak). A new route fails the test until it is added here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.committees.app import create as create_committees
from services.committees.settings import Settings as CommitteesSettings
from services.outreach.app import create as create_outreach
from services.outreach.settings import OutreachSettings
from services.reporting.app import create as create_reporting
from services.reporting.settings import ReportingSettings
from services.visits.app import create as create_visits
from services.visits.domain.checklist import load as load_checklist
from services.visits.settings import VisitsSettings
from shared.auth import issue_token
from shared.scope import overlaps, within
from shared.testing.fixtures import drop_test_resources, free_port, serve, wait_for
from tests.integration.access import city
from tests.integration.access.city import CITY, DISTRICT, OTHER_DISTRICT, OWN, PERCENT, SIBLING

# About 2,000 requests after seeding a city across four services: measured over 300 s (the default timeout) on a
# loaded two-core machine. The default struck in its last phase and, raised inside an in-process handler, showed as a
# plain 500 on committees' dissolve (shared/testing/fixtures.RunnerEscapes now re-raises it as what it is).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ADMINS = {"bureau_admin", "district_admin", "school_admin"}
TEACHERS = {"teacher", "mental_health_teacher"}
AUDITOR, PARTNER = "auditor", "department_partner"
ROLES = [*sorted(ADMINS), *sorted(TEACHERS), AUDITOR, PARTNER]
POSITIONS = {
    "city": CITY,
    "district": DISTRICT,
    "own": OWN,
    "sibling": SIBLING,
    "percent": PERCENT,
    "other": OTHER_DISTRICT,
}
DEPARTMENT = "disabled_persons_federation"
GRADE = f"{OWN}/s_01-g1"
CLASS = f"{GRADE}/{city.class_id(OWN)}"
TODAY = date.today()
OK = frozenset({200, 201, 202})
DENIED = frozenset({403})
HIDDEN = frozenset({403, 404})


@dataclass(frozen=True)
class Caller:
    name: str
    role: str | None = None
    path: str = ""
    staff_id: str | None = None
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def callers() -> list[Caller]:
    """Every role at every position (teachers carry the staff id of their school's class teacher), then bad tokens."""
    out = []
    for role in ROLES:
        for pos, path in POSITIONS.items():
            staff = None
            if role in TEACHERS and pos in ("own", "sibling"):
                staff = ("t-" if role == "teacher" else "m-") + city.school_id(path)
            token = issue_token(
                role=role,
                org_path=path,
                subject=f"{role}@{pos}",
                staff_id=staff,
                department=DEPARTMENT if role == PARTNER else None,
            )
            out.append(Caller(f"{role}@{pos}", role, path, staff, token))
    out += [
        Caller("no-token"),
        Caller("expired", token=issue_token(role="bureau_admin", org_path=CITY, ttl_seconds=-60)),
        Caller("wrong-audience", token=issue_token(role="bureau_admin", org_path=CITY, audience="another-api")),
    ]
    return out


World = dict[str, Any]
Allowed = Callable[[Caller, World], bool]


def anyone(c: Caller, w: World) -> bool:
    return True


def roles(*names: str) -> Allowed:
    return lambda c, w: c.role in names


def over(target: str, *names: str) -> Allowed:
    """Callers with one of `names` whose subtree holds `target`."""
    return lambda c, w: c.role in names and within(target, c.path)


def overlapping(target: str, *names: str) -> Allowed:
    return lambda c, w: c.role in names and overlaps(target, c.path)


def either(*rules: Allowed) -> Allowed:
    return lambda c, w: any(r(c, w) for r in rules)


def class_teacher(c: Caller, w: World) -> bool:
    """The class teacher of the class under test, with their school's token."""
    return c.role == "teacher" and c.staff_id == city.teacher_id(OWN) and within(CLASS, c.path)


def own_teacher(c: Caller, w: World) -> bool:
    """A teacher with a staff id: lists their own assignments (wherever the families are)."""
    return c.role == "teacher" and c.staff_id is not None


def staff_teacher(c: Caller, w: World) -> bool:
    """A teacher or mental-health teacher with a staff id: lists the cases they care for."""
    return c.role in TEACHERS and c.staff_id is not None


def carer(c: Caller, w: World) -> bool:
    return c.role in TEACHERS and c.staff_id in w["carers"]


def recorder(c: Caller, w: World) -> bool:
    """Who may record or schedule the visit of an assignment of the class teacher under test."""
    return (c.role == "teacher" and c.staff_id == city.teacher_id(OWN)) or over(CLASS, *ADMINS)(c, w)


def default_visible(c: Caller, item: dict[str, Any], w: World) -> bool:
    return within(item["org_path"], c.path)


def audit_visible(c: Caller, item: dict[str, Any], w: World) -> bool:
    """An audit row shows to the auditor of every unit the read touched, naming only that unit's children."""
    return all(within(w["student_path"][i], c.path) for i in item["subject_ids"] or [] if i in w["student_path"])


def referral_visible(c: Caller, item: dict[str, Any], w: World) -> bool:
    """A partner lists only its department's referrals; everybody only those in their subtree."""
    return within(item["org_path"], c.path) and (c.role != PARTNER or item["department"] == DEPARTMENT)


def assignment_visible(c: Caller, item: dict[str, Any], w: World) -> bool:
    """Teachers see their own assignments wherever the family lives; the others their subtree."""
    return item["teacher_id"] == c.staff_id if c.role == "teacher" else within(item["org_path"], c.path)


@dataclass
class Op:
    service: str
    method: str
    path: str
    allowed: Allowed
    args: Callable[[World], dict[str, str]] = lambda w: {}
    query: Callable[[World], dict[str, Any]] | None = None
    body: Callable[[World], Any] | None = None
    ok: frozenset[int] = OK
    denied: frozenset[int] = DENIED
    phase: int = 1
    items: Callable[[Any], list[dict[str, Any]]] | None = None
    visible: Callable[[Caller, dict[str, Any], World], bool] = default_visible
    csv: bool = False
    label: str = ""


def page_items(doc: Any) -> list[dict[str, Any]]:
    return list(doc["items"])


def plain_list(doc: Any) -> list[dict[str, Any]]:
    return list(doc)


def listing(service: str, path: str, allowed_roles: set[str], scope_query: Callable[[World], dict[str, Any]],
            items: Callable[[Any], list[dict[str, Any]]] | None = page_items, **kw: Any) -> list[Op]:  # fmt: skip
    """A list route twice: over the caller's own subtree (any allowed role) and narrowed to the school under test."""
    return [
        Op(service, "GET", path, roles(*allowed_roles), items=items, **kw),
        Op(service, "GET", path, over(OWN, *allowed_roles), query=scope_query, items=items, label="narrowed", **kw),
    ]


def under_own(w: World) -> dict[str, Any]:
    return {"under": "s_01"}


def org_path_own(w: World) -> dict[str, Any]:
    return {"org_path": OWN}


READERS = ADMINS | TEACHERS | {AUDITOR}  # committees' readers of cooperation records and lists
REPORT_READERS = ADMINS | {AUDITOR}
ANY_ROLE = set(ROLES)


def checklist() -> list[dict[str, Any]]:
    cfg = load_checklist()
    return [{"item_id": i.id, "answer": "yes"} for i in cfg.items(cfg.current)]


def visit_body(w: World, assignment: str) -> dict[str, Any]:
    return {
        "assignment_id": w[assignment],
        "status": "completed",
        "visited_on": TODAY.isoformat(),
        "mode": "in_home",
        "duration_minutes": 30,
        "checklist": checklist(),
        "findings": [],
    }


def operations() -> list[Op]:
    c, v, o, r = "committees", "visits", "outreach", "reporting"
    unique = uuid.uuid4().hex[:6]
    ops = [
        # --- committees: directory
        Op(c, "GET", "/api/v1/org-units", anyone_signed_in := roles(*ANY_ROLE)),
        Op(c, "GET", "/api/v1/org-units/{org_unit_id}", anyone_signed_in, args=lambda w: {"org_unit_id": "s_01"}),
        Op(c, "POST", "/api/v1/org-units", over(GRADE, *ADMINS), ok=OK | {409},
           body=lambda w: {"org_unit_id": "s_01-g1-c9", "parent_id": "s_01-g1", "level": "class", "name": "C9"}),
        Op(c, "PATCH", "/api/v1/org-units/{org_unit_id}", over(CLASS, *ADMINS),
           args=lambda w: {"org_unit_id": city.class_id(OWN)}, body=lambda w: {"name": "C1"}),
        *listing(c, "/api/v1/staff", READERS, under_own),
        Op(c, "POST", "/api/v1/staff", over(OWN, *ADMINS), ok=OK | {409},
           body=lambda w: {"staff_id": f"t-new-{unique}", "name": "New", "org_unit_id": "s_01",
                           "roles": ["subject_teacher"]}),
        Op(c, "GET", "/api/v1/staff/{staff_id}", over(OWN, *READERS), args=lambda w: {"staff_id": "t-s_01"}),
        Op(c, "PATCH", "/api/v1/staff/{staff_id}", over(OWN, *ADMINS), args=lambda w: {"staff_id": "t-s_01"},
           body=lambda w: {"phone": "13800000000"}),
        Op(c, "DELETE", "/api/v1/staff/{staff_id}", over(OWN, *ADMINS), phase=3,
           args=lambda w: {"staff_id": f"t-new-{unique}"}),
        *listing(c, "/api/v1/students", READERS, under_own),
        Op(c, "POST", "/api/v1/students", over(CLASS, *ADMINS), ok=OK | {409},
           body=lambda w: {"student_no": f"N-new-{unique}", "name": "New", "birth_date": "2016-01-01",
                           "class_id": city.class_id(OWN), "family_id": w["family"]["F-s_01"]}),
        Op(c, "GET", "/api/v1/students/{student_id}", either(over(CLASS, *ADMINS, AUDITOR), class_teacher),
           args=lambda w: {"student_id": w["student"]["N-s_01-1"]}),
        Op(c, "PATCH", "/api/v1/students/{student_id}", over(CLASS, *ADMINS),
           args=lambda w: {"student_id": w["student"]["N-s_01-1"]}, body=lambda w: {"name": "Child 1"}),
        Op(c, "GET", "/api/v1/students/{student_id}/duplicates", over(CLASS, *ADMINS),
           args=lambda w: {"student_id": w["student"]["N-s_01-1"]}),
        Op(c, "POST", "/api/v1/students/{student_id}/merge", over(CLASS, *ADMINS), ok=OK | {409}, phase=3,
           args=lambda w: {"student_id": w["student"]["N-s_01-1"]},
           body=lambda w: {"duplicate_id": w["student"]["N-s_01-b"]}),
        Op(c, "DELETE", "/api/v1/students/{student_id}", over(CLASS, *ADMINS), phase=3,
           args=lambda w: {"student_id": w["student"]["N-s_01-c"]}),
        Op(c, "POST", "/api/v1/families", roles(*ADMINS), ok=OK | {409},
           body=lambda w: {"family_no": f"F-new-{unique}", "parents_work_away": False,
                           "living_arrangement": "both_parents"}),
        Op(c, "GET", "/api/v1/families/{family_id}", either(over(CLASS, *ADMINS), class_teacher),
           args=lambda w: {"family_id": w["family"]["F-s_01"]}),
        Op(c, "PATCH", "/api/v1/families/{family_id}", over(CLASS, *ADMINS),
           args=lambda w: {"family_id": w["family"]["F-s_01"]}, body=lambda w: {"address": "Street 1"}),
        Op(c, "POST", "/api/v1/families/{family_id}/guardians", over(CLASS, *ADMINS), ok=OK | {409},
           args=lambda w: {"family_id": w["family"]["F-s_01"]},
           body=lambda w: {"guardian_no": f"P-new-{unique}", "name": "Aunt", "relation": "other"}),
        # --- committees: imports (bureau admins over the whole city)
        Op(c, "POST", "/api/v1/imports", over(CITY, "bureau_admin"),
           body=lambda w: {"org_units": [{"org_unit_id": "620400", "level": "city", "name": "City"}]}),
        Op(c, "POST", "/api/v1/imports/csv", over(CITY, "bureau_admin")),
        Op(c, "PUT", "/api/v1/imports/{import_id}/files/{entity}", over(CITY, "bureau_admin"), csv=True,
           args=lambda w: {"import_id": w["csv_import"], "entity": "org_units"}),
        Op(c, "POST", "/api/v1/imports/{import_id}/start", over(CITY, "bureau_admin"), phase=2, ok=OK | {409},
           args=lambda w: {"import_id": w["csv_import"]}),
        Op(c, "GET", "/api/v1/imports/{import_id}", over(CITY, "bureau_admin"),
           args=lambda w: {"import_id": w["import"]}),
        # --- committees: cooperation
        Op(c, "POST", "/api/v1/committees", over(CLASS, *ADMINS), ok=OK | {409, 422},
           body=lambda w: {"org_unit_id": city.class_id(OWN), "formed_on": TODAY.isoformat()}),
        *listing(c, "/api/v1/committees", READERS, under_own),
        Op(c, "GET", "/api/v1/committees/{committee_id}", over(OWN, *READERS),
           args=lambda w: {"committee_id": w["committee"]}),
        Op(c, "POST", "/api/v1/committees/{committee_id}/dissolve", over(OWN, *ADMINS), phase=3, ok=OK | {409},
           args=lambda w: {"committee_id": w["committee"]}, body=lambda w: {"dissolved_on": TODAY.isoformat()}),
        Op(c, "POST", "/api/v1/committees/{committee_id}/members", over(OWN, *ADMINS), ok=OK | {409},
           args=lambda w: {"committee_id": w["committee"]},
           body=lambda w: {"guardian_id": w["guardian"], "term_start": TODAY.isoformat()}),
        Op(c, "DELETE", "/api/v1/committees/{committee_id}/members/{guardian_id}", over(OWN, *ADMINS), phase=2,
           ok=OK | {404, 409}, args=lambda w: {"committee_id": w["committee"], "guardian_id": w["guardian"]}),
        Op(c, "POST", "/api/v1/parent-schools", over(OWN, *ADMINS),
           body=lambda w: {"org_unit_id": "s_01", "kind": "school", "name": "Parents' school"}),
        *listing(c, "/api/v1/parent-schools", READERS, under_own),
        Op(c, "GET", "/api/v1/parent-schools/{parent_school_id}", over(OWN, *READERS),
           args=lambda w: {"parent_school_id": w["parent_school"]}),
        Op(c, "POST", "/api/v1/parent-schools/{parent_school_id}/sessions", over(OWN, *ADMINS),
           args=lambda w: {"parent_school_id": w["parent_school"]},
           body=lambda w: {"topic": "Reading", "held_on": TODAY.isoformat(), "mode": "in_person"}),
        Op(c, "GET", "/api/v1/parent-schools/{parent_school_id}/sessions/{session_id}", over(OWN, *READERS),
           args=lambda w: {"parent_school_id": w["parent_school"], "session_id": w["session"]}),
        Op(c, "POST", "/api/v1/parent-schools/{parent_school_id}/sessions/{session_id}/enrolments",
           over(OWN, *ADMINS), ok=OK | {409},
           args=lambda w: {"parent_school_id": w["parent_school"], "session_id": w["session"]},
           body=lambda w: {"guardian_ids": [w["guardian"]]}),
        Op(c, "POST", "/api/v1/parent-schools/{parent_school_id}/sessions/{session_id}/held", over(OWN, *ADMINS),
           phase=2, ok=OK | {409},
           args=lambda w: {"parent_school_id": w["parent_school"], "session_id": w["session"]}),
        Op(c, "POST", "/api/v1/parent-schools/{parent_school_id}/sessions/{session_id}/attendance",
           over(OWN, *ADMINS), phase=3, ok=OK | {409},
           args=lambda w: {"parent_school_id": w["parent_school"], "session_id": w["session"]},
           body=lambda w: {"records": [{"guardian_id": w["guardian"], "attended": True}]}),
        Op(c, "POST", "/api/v1/parent-schools/{parent_school_id}/sessions/{session_id}/online-attendance",
           over(OWN, *ADMINS), phase=3, ok=OK | {409},
           args=lambda w: {"parent_school_id": w["parent_school"], "session_id": w["session"]},
           body=lambda w: {"records": [{"guardian_id": w["guardian"], "minutes": 30}]}),
        Op(c, "GET", "/api/v1/parent-schools/{parent_school_id}/completion", over(OWN, *READERS), items=page_items,
           visible=lambda c, item, w: True, args=lambda w: {"parent_school_id": w["parent_school"]}),
        Op(c, "GET", "/api/v1/guardians/{guardian_id}/attendance", over(CLASS, *READERS),
           args=lambda w: {"guardian_id": w["guardian"]}),
        Op(c, "POST", "/api/v1/instructor-teams", over(OWN, *ADMINS),
           body=lambda w: {"org_unit_id": "s_01", "name": "Team"}),
        *listing(c, "/api/v1/instructor-teams", READERS, under_own),
        Op(c, "GET", "/api/v1/instructor-teams/{team_id}", over(OWN, *READERS), args=lambda w: {"team_id": w["team"]}),
        Op(c, "POST", "/api/v1/instructor-teams/{team_id}/members", over(OWN, *ADMINS), ok=OK | {409},
           args=lambda w: {"team_id": w["team"]}, body=lambda w: {"role": "class_teacher", "staff_id": "t-s_01"}),
        Op(c, "DELETE", "/api/v1/instructor-teams/{team_id}/members/{member_id}", over(OWN, *ADMINS), phase=3,
           ok=OK | {404, 409}, args=lambda w: {"team_id": w["team"], "member_id": w["team_member"]}),
        Op(c, "POST", "/api/v1/lecturers", over(OWN, *ADMINS), body=lambda w: {"org_unit_id": "s_01", "name": "L"}),
        *listing(c, "/api/v1/lecturers", READERS, under_own),
        Op(c, "POST", "/api/v1/lectures", over(OWN, *ADMINS),
           body=lambda w: {"lecturer_id": w["lecturer"], "topic": "other", "given_on": TODAY.isoformat(),
                           "audience_org_unit_ids": ["s_01"], "headcount": 10}),
        *listing(c, "/api/v1/lectures", READERS, under_own),
        Op(c, "DELETE", "/api/v1/lecturers/{lecturer_id}", over(OWN, *ADMINS), phase=3,
           args=lambda w: {"lecturer_id": w["lecturer"]}),
        *listing(c, "/api/v1/audit/committees/reads", {AUDITOR}, org_path_own, items=page_items, visible=audit_visible),
        # --- visits
        Op(v, "GET", "/api/v1/guidance-topics", anyone_signed_in),
        Op(v, "GET", "/api/v1/checklists/{version}", anyone_signed_in,
           args=lambda w: {"version": load_checklist().current}),
        Op(v, "GET", "/api/v1/campaigns", roles("teacher", AUDITOR, *ADMINS), items=page_items,
           visible=lambda c, i, w: overlaps(i["org_path"], c.path)),
        Op(v, "POST", "/api/v1/campaigns", over(OWN, *ADMINS),
           body=lambda w: {"name": "More", "org_path": OWN, "starts_on": TODAY.isoformat(),
                           "ends_on": (TODAY + timedelta(days=30)).isoformat()}),
        Op(v, "GET", "/api/v1/campaigns/{campaign_id}", overlapping(OWN, "teacher", AUDITOR, *ADMINS),
           args=lambda w: {"campaign_id": w["school_campaign"]}),
        Op(v, "POST", "/api/v1/campaigns/{campaign_id}/launch", over(OWN, *ADMINS), phase=2, ok=OK | {409},
           args=lambda w: {"campaign_id": w["school_campaign"]}),
        Op(v, "POST", "/api/v1/campaigns/{campaign_id}/close", over(OWN, *ADMINS), phase=3, ok=OK | {409},
           args=lambda w: {"campaign_id": w["school_campaign"]}),
        Op(v, "GET", "/api/v1/campaigns/{campaign_id}/progress",
           either(overlapping(OWN, AUDITOR, *ADMINS), lambda c, w: own_teacher(c, w) and overlaps(OWN, c.path)),
           args=lambda w: {"campaign_id": w["school_campaign"]}),
        Op(v, "GET", "/api/v1/campaigns/{campaign_id}/progress",
           either(over(OWN, AUDITOR, *ADMINS), lambda c, w: own_teacher(c, w) and overlaps(OWN, c.path)),
           label="by teacher, narrowed", args=lambda w: {"campaign_id": w["school_campaign"]},
           query=lambda w: {"by": "teacher", "org_path": OWN}),
        Op(v, "GET", "/api/v1/me/assignments", own_teacher),
        Op(v, "GET", "/api/v1/campaigns/{campaign_id}/assignments",
           either(roles(AUDITOR, *ADMINS), own_teacher),
           args=lambda w: {"campaign_id": w["campaign"]}, items=page_items,
           visible=assignment_visible),
        Op(v, "GET", "/api/v1/campaigns/{campaign_id}/assignments", either(over(OWN, AUDITOR, *ADMINS), own_teacher),
           label="narrowed", args=lambda w: {"campaign_id": w["campaign"]}, query=org_path_own, items=page_items,
           visible=assignment_visible),
        Op(v, "POST", "/api/v1/campaigns/{campaign_id}/assignments", over(CLASS, *ADMINS), ok=OK | {409, 422},
           args=lambda w: {"campaign_id": w["campaign"]},
           body=lambda w: {"family_id": w["family"]["F-s_01-b"], "teacher_id": "t-s_01"}),
        Op(v, "PATCH", "/api/v1/assignments/{assignment_id}", over(CLASS, *ADMINS), ok=OK | {409, 422},
           args=lambda w: {"assignment_id": w["assignment"]["F-s_01-b"]}, body=lambda w: {"teacher_id": "t-s_01"}),
        Op(v, "DELETE", "/api/v1/assignments/{assignment_id}", over(CLASS, *ADMINS), phase=3, ok=OK | {409},
           args=lambda w: {"assignment_id": w["assignment"]["F-s_01-c"]}),
        Op(v, "POST", "/api/v1/assignments/{assignment_id}/schedule", recorder, ok=OK | {409},
           args=lambda w: {"assignment_id": w["assignment"]["F-s_01-b"]},
           body=lambda w: {"planned_on": (TODAY + timedelta(days=1)).isoformat(), "mode": "in_home"}),
        Op(v, "POST", "/api/v1/visits", recorder, phase=2, ok=OK | {409},
           body=lambda w: visit_body(w, "visit_target")),
        Op(v, "POST", "/api/v1/visits/batch", roles("teacher", *ADMINS), phase=2,
           body=lambda w: {"visits": [visit_body(w, "visit_target")]}),
        Op(v, "GET", "/api/v1/visits/{visit_id}", either(over(CLASS, AUDITOR, *ADMINS), class_teacher),
           args=lambda w: {"visit_id": w["visit"]}),
        *listing(v, "/api/v1/audit/visits/reads", {AUDITOR}, org_path_own, items=page_items, visible=audit_visible),
        # --- outreach
        Op(o, "GET", "/api/v1/cases", either(roles(*ADMINS), staff_teacher),
           items=page_items),
        Op(o, "GET", "/api/v1/cases", either(over(OWN, *ADMINS), staff_teacher), query=org_path_own,
           items=page_items, label="narrowed"),
        Op(o, "GET", "/api/v1/cases/{case_id}", either(over(CLASS, *ADMINS), carer),
           args=lambda w: {"case_id": w["case"]}),
        Op(o, "POST", "/api/v1/cases/{case_id}/contacts", either(over(CLASS, *ADMINS), carer),
           args=lambda w: {"case_id": w["case"]},
           body=lambda w: {"contacted_at": datetime.now(UTC).isoformat(), "mode": "phone", "outcome": "called"}),
        Op(o, "POST", "/api/v1/cases/{case_id}/state", either(over(CLASS, *ADMINS), carer), ok=OK | {409},
           args=lambda w: {"case_id": w["case"]}, body=lambda w: {"state": "in_progress"}),
        Op(o, "POST", "/api/v1/cases/{case_id}/referrals", either(over(CLASS, *ADMINS), carer), ok=OK | {409},
           args=lambda w: {"case_id": w["case"]}, body=lambda w: {"department": "health", "category": "health_need"}),
        Op(o, "POST", "/api/v1/cases/{case_id}/closure", either(over(CLASS, *ADMINS), carer), phase=2,
           ok=OK | {409}, args=lambda w: {"case_id": w["case"]}, body=lambda w: {"reason_code": "resolved"}),
        # deciding needs a closing role and not being the proposer: allowed callers may still get 403 or 409
        Op(o, "POST", "/api/v1/cases/{case_id}/closure/reject", either(over(CLASS, *ADMINS), carer), phase=3,
           ok=OK | {403, 409}, args=lambda w: {"case_id": w["case"]}),
        Op(o, "POST", "/api/v1/cases/{case_id}/closure/approve", either(over(CLASS, *ADMINS), carer), phase=3,
           ok=OK | {403, 409}, args=lambda w: {"case_id": w["case"]}),
        Op(o, "GET", "/api/v1/referrals", roles(PARTNER, *ADMINS), items=page_items,
           visible=referral_visible),
        Op(o, "GET", "/api/v1/referrals", over(OWN, PARTNER, *ADMINS), query=org_path_own, items=page_items,
           label="narrowed"),
        Op(o, "GET", "/api/v1/referrals/{referral_id}", over(OWN, PARTNER, *ADMINS), denied=HIDDEN,
           args=lambda w: {"referral_id": w["referral"]}),
        *[
            Op(o, "POST", f"/api/v1/referrals/{{referral_id}}/{action}", over(OWN, PARTNER), denied=HIDDEN,
               phase=phase, ok=OK | {409}, args=lambda w: {"referral_id": w["referral"]})
            for action, phase in (("acknowledge", 1), ("accept", 2), ("resolve", 3), ("decline", 3))
        ],
        *listing(o, "/api/v1/groups/members", ADMINS, org_path_own, items=page_items),
        Op(o, "GET", "/api/v1/groups/counts", roles(*ADMINS)),
        Op(o, "GET", "/api/v1/groups/counts", over(OWN, *ADMINS), query=org_path_own, label="narrowed"),
        Op(o, "POST", "/api/v1/groups/members", over(CLASS, PARTNER, *ADMINS), ok=OK | {409},
           body=lambda w: {"student_id": w["student"]["N-s_01-1"], "group": "disability"}),
        Op(o, "POST", "/api/v1/groups/members/{membership_id}/verify", over(CLASS, PARTNER, *ADMINS),
           args=lambda w: {"membership_id": w["membership"]}, body=lambda w: {"verified": True}),
        *listing(o, "/api/v1/audit/outreach/reads", {AUDITOR}, org_path_own, items=page_items, visible=audit_visible),
        # notifications: staff tokens only, each caller their own inbox and address
        Op(o, "GET", "/api/v1/notifications", staff_teacher, items=page_items, visible=lambda c, item, w: True),
        Op(o, "PUT", "/api/v1/notifications/email", staff_teacher, body=lambda w: {"email": "carer@school.example"}),
        Op(o, "GET", "/api/v1/notifications/email", staff_teacher, phase=2),
        Op(o, "POST", "/api/v1/notifications/{notification_id}/read", staff_teacher, ok=OK | {404},
           args=lambda w: {"notification_id": "not-mine"}),
        # --- reporting
        *[
            op
            for route in ("/api/v1/summary", "/api/v1/children", "/api/v1/series")
            for op in listing(r, route, REPORT_READERS, org_path_own, items=None)
        ],
        Op(r, "GET", "/api/v1/reporting/campaigns", roles(*REPORT_READERS)),
        # 404 until reporting has seen the campaign's launch (it reads the visits topics asynchronously)
        Op(r, "GET", "/api/v1/reporting/teachers-behind", roles(*REPORT_READERS), ok=OK | {404},
           query=lambda w: {"campaign_id": w["campaign"]}),
        Op(r, "GET", "/api/v1/reporting/teachers-behind", over(OWN, *REPORT_READERS), ok=OK | {404},
           query=lambda w: {"campaign_id": w["campaign"], "org_path": OWN}, label="narrowed"),
        Op(r, "GET", "/api/v1/whoami", anyone_signed_in),
        *listing(r, "/api/v1/exports/{table}", REPORT_READERS, org_path_own, items=None,
                 args=lambda w: {"table": "referrals"}),
    ]  # fmt: skip
    return ops


# ------------------------------------------------------------------------------------------------ the city


@dataclass
class Stack:
    urls: dict[str, str]
    schemas: dict[str, str]
    dsn: str
    # idle connections are dropped well before uvicorn's 5 s keep-alive ends, so no request races a closing socket
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=60, limits=httpx.Limits(keepalive_expiry=1.0))
    )

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path


BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path=CITY, subject="seed")}


@pytest.fixture(scope="module")
async def running(stack: Any) -> AsyncIterator[Stack]:
    """The four services on one topic prefix, each with its own schema."""
    tag = uuid.uuid4().hex[:10]
    common = {
        "env": "test",
        "database_url": stack.database_url,
        "kafka_bootstrap_servers": stack.kafka_bootstrap,
        "topic_prefix": f"t{tag}.",
        "topic_partitions": 1,
        "relay_poll_seconds": 0.1,
    }
    committees = CommitteesSettings(**common, db_schema=f"t_{tag}_committees", http_port=free_port())
    visits = VisitsSettings(**common, db_schema=f"t_{tag}_visits", http_port=free_port())
    outreach = OutreachSettings(**common, db_schema=f"t_{tag}_outreach", http_port=free_port(), scheduler_enabled=False)
    reporting = ReportingSettings(**common, db_schema=f"t_{tag}_reporting", http_port=free_port())
    settings = {"committees": committees, "visits": visits, "outreach": outreach, "reporting": reporting}
    apps = {
        "committees": create_committees(committees),
        "visits": create_visits(visits),
        "outreach": create_outreach(outreach),
        "reporting": create_reporting(reporting),
    }
    try:
        async with (
            serve(apps["committees"]) as cu,
            serve(apps["visits"]) as vu,
            serve(apps["outreach"]) as ou,
            serve(apps["reporting"]) as ru,
        ):
            s = Stack(
                {"committees": cu, "visits": vu, "outreach": ou, "reporting": ru},
                {k: x.db_schema for k, x in settings.items()},
                stack.database_url,
            )
            s.apps = apps  # type: ignore[attr-defined]
            try:
                yield s
            finally:
                await s.http.aclose()
    finally:
        await drop_test_resources(stack, f"t{tag}.", {x.db_schema for x in settings.values()})


async def _count(s: Stack, service: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(s.dsn, server_settings={"search_path": s.schemas[service]})
    try:
        return int(await conn.fetchval(sql, *args) or 0)
    finally:
        await conn.close()


async def _ok(r: httpx.Response, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201, 202)), (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()


@pytest.fixture(scope="module")
async def world(running: Stack) -> World:
    """The tiny city through committees, a city campaign and a school campaign, visits with disability findings in
    `s_01` and `sx01` (so cases, referrals and memberships exist in the school and its sibling), cooperation records."""
    s, http = running, running.http
    c = "committees"
    job = await _ok(await http.post(s.url(c, "/api/v1/imports"), json=city.city_json(), headers=BUREAU), 202)
    w: World = {"import": job["import_id"]}

    async def imported() -> bool:
        r = await http.get(s.url(c, f"/api/v1/imports/{job['import_id']}"), headers=BUREAU)
        return r.json()["status"] == "succeeded"

    await wait_for(imported, timeout=60)
    students = (await _ok(await http.get(s.url(c, "/api/v1/students"), params={"limit": 500}, headers=BUREAU)))["items"]
    w["student"] = {x["student_no"]: x["student_id"] for x in students}
    w["student_path"] = {x["student_id"]: x["org_path"] for x in students}
    w["family"] = {}
    for x in students:
        no = x["student_no"]  # N-<school>-<n or extra>
        school, rest = no[2:].rsplit("-", 1)
        w["family"][f"F-{school}" if rest in ("1", "2") else f"F-{school}-{rest}"] = x["family_id"]
    fam = await _ok(await http.get(s.url(c, f"/api/v1/families/{w['family']['F-s_01']}"), headers=BUREAU))
    w["guardian"] = fam["guardians"][0]["guardian_id"]
    csv_job = await _ok(await http.post(s.url(c, "/api/v1/imports/csv"), headers=BUREAU), 201)
    w["csv_import"] = csv_job["import_id"]
    w["committee"] = (
        await _ok(
            await http.post(
                s.url(c, "/api/v1/committees"), json={"org_unit_id": "s_01", "formed_on": "2026-09-01"}, headers=BUREAU
            )
        )
    )["committee_id"]
    ps = {"org_unit_id": "s_01", "kind": "school", "name": "PS"}
    w["parent_school"] = (await _ok(await http.post(s.url(c, "/api/v1/parent-schools"), json=ps, headers=BUREAU)))[
        "parent_school_id"
    ]
    session = {"topic": "T", "held_on": TODAY.isoformat(), "mode": "online"}
    w["session"] = (
        await _ok(
            await http.post(
                s.url(c, f"/api/v1/parent-schools/{w['parent_school']}/sessions"), json=session, headers=BUREAU
            )
        )
    )["session_id"]
    team = await _ok(
        await http.post(s.url(c, "/api/v1/instructor-teams"), json={"org_unit_id": "s_01", "name": "T"}, headers=BUREAU)
    )
    w["team"] = team["team_id"]
    member = await _ok(
        await http.post(
            s.url(c, f"/api/v1/instructor-teams/{w['team']}/members"),
            json={"role": "mental_health_teacher", "staff_id": "m-s_01"},
            headers=BUREAU,
        )
    )
    w["team_member"] = member["member_id"]
    lecturer = await _ok(
        await http.post(s.url(c, "/api/v1/lecturers"), json={"org_unit_id": "s_01", "name": "L"}, headers=BUREAU)
    )
    w["lecturer"] = lecturer["lecturer_id"]

    # visits: once the directory arrived, a city campaign with its assignments and a draft school campaign
    total = len(students)
    await wait_for(lambda: _has(s, "visits", "SELECT count(*) FROM students", total), timeout=60)
    await wait_for(lambda: _has(s, "outreach", "SELECT count(*) FROM students", total), timeout=60)
    v = "visits"
    period = {"starts_on": (TODAY - timedelta(days=5)).isoformat(), "ends_on": (TODAY + timedelta(days=30)).isoformat()}
    city_campaign = {"name": "City", "org_path": CITY, **period}
    camp = await _ok(await http.post(s.url(v, "/api/v1/campaigns"), json=city_campaign, headers=BUREAU))
    w["campaign"] = camp["campaign_id"]
    await _ok(await http.post(s.url(v, f"/api/v1/campaigns/{w['campaign']}/launch"), headers=BUREAU))
    school = {"name": "School", "org_path": OWN, **period}
    w["school_campaign"] = (await _ok(await http.post(s.url(v, "/api/v1/campaigns"), json=school, headers=BUREAU)))[
        "campaign_id"
    ]
    assignments = (
        await _ok(
            await http.get(
                s.url(v, f"/api/v1/campaigns/{w['campaign']}/assignments"), params={"limit": 1000}, headers=BUREAU
            )
        )
    )["items"]
    by_family = {x["family_id"]: x for x in assignments}
    w["assignment"] = {no: by_family[fid]["assignment_id"] for no, fid in w["family"].items() if fid in by_family}
    w["visit_target"] = w["assignment"]["F-s_01-b"]
    assert by_family[w["family"]["F-s_01"]]["teacher_id"] == city.teacher_id(OWN)

    # a visit with a disability finding in the school and in its sibling: cases, referrals, memberships in both
    for path in (OWN, SIBLING):
        sid = city.school_id(path)
        teacher = {
            "Authorization": "Bearer "
            + issue_token(role="teacher", org_path=path, staff_id=city.teacher_id(path), subject=f"seed-{sid}")
        }
        body = visit_body(w, "visit_target") | {
            "assignment_id": w["assignment"][f"F-{sid}"],
            "findings": [{"student_id": w["student"][f"N-{sid}-1"], "category": "disability", "severity": "high"}],
        }
        doc = await _ok(await http.post(s.url(v, "/api/v1/visits"), json=body, headers=teacher), 201)
        if path == OWN:
            w["visit"] = doc["visit_id"]
    o = "outreach"

    async def referral() -> Any:
        r = await http.get(s.url(o, "/api/v1/referrals"), headers=BUREAU)
        refs = [x for x in r.json()["items"] if x["department"] == DEPARTMENT] if r.status_code == 200 else []
        return refs if len(refs) == 2 else None

    refs = await wait_for(referral, timeout=60)
    ref = next(x for x in refs if within(x["org_path"], OWN))
    w["referral"], w["case"] = ref["referral_id"], ref["case_id"]
    case = await _ok(await http.get(s.url(o, f"/api/v1/cases/{w['case']}"), headers=BUREAU))
    w["carers"] = {x["staff_id"] for x in case["carers"]}
    groups = {"org_path": OWN, "group": "disability"}
    members = await _ok(await http.get(s.url(o, "/api/v1/groups/members"), params=groups, headers=BUREAU))
    w["membership"] = members["items"][0]["membership_id"]
    return w


async def _has(s: Stack, service: str, sql: str, n: int) -> bool:
    return await _count(s, service, sql) >= n


# ------------------------------------------------------------------------------------------------ the test


def expand(template: str, args: dict[str, str]) -> str:
    for k, val in args.items():
        template = template.replace("{" + k + "}", val)
    return template


async def test_every_operation_by_every_caller(running: Stack, world: World) -> None:
    ops = operations()

    # Every operation of the four OpenAPI documents is in the matrix (a new route fails here until it is added).
    documented = {
        (name, m.upper(), p)
        for name, app in running.apps.items()  # type: ignore[attr-defined]
        for p, methods in app.openapi()["paths"].items()
        for m in methods
        if p.startswith("/api/")
    }
    covered = {(op.service, op.method, op.path) for op in ops}
    assert sorted(documented - covered) == [], "operations missing from the matrix"
    assert sorted(covered - documented) == [], "operations in the matrix but not in the OpenAPI documents"

    everyone = callers()
    failures: list[str] = []
    leaks: list[str] = []
    gate = asyncio.Semaphore(12)
    counted = 0

    async def one(op: Op, caller: Caller) -> None:
        nonlocal counted
        args = op.args(world)
        url = running.url(op.service, expand(op.path, args))
        kw: dict[str, Any] = {"headers": caller.headers()}
        if op.method == "PATCH":  # PATCH requires If-Match (428 without); `*` keeps access the only question here
            kw["headers"]["If-Match"] = "*"
        if op.query:
            kw["params"] = op.query(world)
        if op.csv:
            kw["content"] = b"org_unit_id,parent_id,level,name\n620400,,city,City\n"
            kw["headers"] = {**kw["headers"], "content-type": "text/csv"}
        elif op.body is not None:
            kw["json"] = op.body(world)
        name = f"{op.method} {op.path}{' (' + op.label + ')' if op.label else ''} as {caller.name}"
        async with gate:
            try:
                r = await running.http.request(op.method, url, **kw)
            except httpx.TransportError:  # a pooled connection closed under it: nothing was processed, once more
                try:
                    r = await running.http.request(op.method, url, **kw)
                except httpx.TransportError as exc:
                    failures.append(f"{name}: {exc!r}")
                    return
        counted += 1
        where = f"{name}: {r.status_code}"
        if caller.role is None:
            if r.status_code != 401:
                failures.append(f"{where}, expected 401")
            if 200 <= r.status_code < 300:
                leaks.append(where)
            return
        allowed = op.allowed(caller, world)
        expected = op.ok if allowed else op.denied
        if r.status_code not in expected:
            failures.append(f"{where}, expected {sorted(expected)}: {r.text[:200]}")
        if not allowed and 200 <= r.status_code < 300:
            leaks.append(where)
        if allowed and r.status_code == 200 and op.items is not None:
            outside = [i for i in op.items(r.json()) if not op.visible(caller, i, world)]
            if outside:
                leaks.append(f"{where} listed {len(outside)} item(s) outside its subtree, e.g. {outside[0]}")

    for phase in (1, 2, 3):
        await asyncio.gather(*(one(op, c) for op in ops if op.phase == phase for c in everyone))

    report = "\n".join([f"{len(leaks)} leaks:", *leaks[:60], f"{len(failures)} unexpected answers:", *failures[:80]])
    assert leaks == [], report
    assert counted == len(ops) * len(everyone) and failures == [], (
        f"{len(failures)} of {counted} requests answered unexpectedly:\n" + "\n".join(failures[:80])
    )

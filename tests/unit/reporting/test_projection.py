"""The projection covers every contract event and produces well-formed fact operations."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.contracts.committees
import shared.contracts.outreach
import shared.contracts.visits  # noqa: F401
from services.reporting.domain.paths import ancestors
from services.reporting.domain.projection import OP_COLUMNS, PROJECTIONS, SEP, project
from services.reporting.store.facts import OPS, _rounds
from shared.contracts import outreach as out
from shared.contracts import visits as vi
from shared.contracts.common import Category, Severity, VisitMode
from shared.events import registry, type_of

NOW = datetime(2026, 10, 10, 8, tzinfo=UTC)


# Event types reporting deliberately does not read: per-person messages to staff, no figure of the bureau's.
NOT_PROJECTED = {type_of(out.NotificationCreated)}


def test_every_event_type_of_the_three_contracts_is_projected():
    types = {s.type for s in registry.all() if s.service in ("committees", "visits", "outreach")}
    assert types - NOT_PROJECTED == set(PROJECTIONS)


def test_every_operation_has_sql_with_matching_columns():
    assert set(OPS) == set(OP_COLUMNS)
    for name, op in OPS.items():
        assert len(op.types) == len(OP_COLUMNS[name]), name
        assert f"${len(op.types)}::" in op.insert and f"${len(op.types) + 1}" not in op.insert, name


# The Python values asyncpg binds to each SQL type of the store's statements.
BINDS = {"text": str, "timestamptz": datetime, "date": date, "int": int, "boolean": bool}
MODELS = {s.type: s.model for s in registry.all() if s.type in PROJECTIONS}


def binds(sql_type: str, value: object) -> bool:
    """Whether `value` is what the store's statement takes for a column of `sql_type` (None: the column is left)."""
    if value is None:
        return True
    if (sql_type == "int" and isinstance(value, bool)) or (sql_type == "date" and isinstance(value, datetime)):
        return False
    return isinstance(value, BINDS[sql_type])


@pytest.mark.parametrize("event_type", sorted(MODELS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_valid_event_projects_to_rows_the_store_binds_at_the_events_own_unit(event_type, data):
    payload = data.draw(st.builds(MODELS[event_type]))
    ops = project(event_type, payload)
    assert ops == project(event_type, payload)  # a pure function of the event
    path = getattr(payload, "org_path", None)
    for name, row in ops:
        columns = OP_COLUMNS[name]
        assert len(row) == len(columns), name
        for column, sql_type, value in zip(columns, OPS[name].types, row, strict=True):
            assert binds(sql_type, value), f"{name}.{column}: {value!r} for {sql_type}"
        if path is not None and "org_path" in columns:
            assert row[columns.index("org_path")] == path, name  # a fact stays at its event's unit
        if path is not None and name == "dirty_leaf":
            assert path == row[0] or path.startswith(row[0] + "/")  # the unit or one of its ancestors


def visit(answers: dict[str, str]) -> vi.VisitCompleted:
    return vi.VisitCompleted(
        visit_id="v1",
        campaign_id="c1",
        assignment_id="a1",
        teacher_id="t1",
        family_id="f1",
        student_ids=["s1"],
        org_path="/620400/620402/s1/g1/c1",
        mode=VisitMode.ONLINE,
        visited_on=date(2026, 10, 10),
        duration_minutes=30,
        checklist=[vi.ChecklistItemAnswer(item_id=k, answer=vi.ChecklistAnswer(v)) for k, v in answers.items()],
        guidance_topics=[],
        finding_count=0,
        occurred_at=NOW,
    )


def test_visit_projects_checklist_answers_and_marks_nothing():
    # A visit's figures add up row by row: the store logs its change, no leaf is recomputed for it (its teacher's
    # and family's corrections are redone when the logged change moves their set of paths).
    ops = project("visits.visit.completed.v1", visit({"i1": "yes", "i2": "no", "i3": "not_applicable", "i4": "yes"}))
    names = [n for n, _ in ops]
    assert names == ["visit"]
    row = dict(zip(OP_COLUMNS["visit"], ops[0][1], strict=True))
    assert row["yes_items"] == f"i1{SEP}i4" and row["no_items"] == "i2"
    assert row["status"] == "completed" and row["mode"] == "online"


def test_finding_marks_the_school_leaf_where_referrals_live():
    f = vi.FindingRecorded(
        finding_id="fd1",
        student_id="s1",
        visit_id="v1",
        campaign_id="c1",
        teacher_id="t1",
        category=Category.SAFETY_RISK,
        severity=Severity.URGENT,
        org_path="/620400/620402/s1/g1/c1",
        visited_on=date(2026, 10, 10),
        recorded_at=NOW,
    )
    leaves = [r[0] for n, r in project("visits.finding.recorded.v1", f) if n == "dirty_leaf"]
    assert leaves == ["/620400/620402/s1/g1/c1", "/620400/620402/s1"]


def test_case_events_fill_only_their_own_columns():
    facts = {
        "case_id": "k1",
        "student_id": "s1",
        "org_path": "/620400/620402/s1/g1/c1",
        "risk_level": Severity.HIGH,
        "categories": [Category.LEFT_BEHIND],
        "occurred_at": NOW,
    }
    contact = out.CaseContactLogged(**facts, contact_id="x", mode="home", contacted_at=NOW, first_contact=True)
    row = dict(zip(OP_COLUMNS["case"], project("outreach.case.contact_logged.v1", contact)[0][1], strict=True))
    assert row["first_contact_at"] == NOW and row["state"] is None and row["opened_at"] is None
    closed = out.CaseClosed(**facts, reason_code="done", approved_by_role="school_admin")
    row = dict(zip(OP_COLUMNS["case"], project("outreach.case.closed.v1", closed)[0][1], strict=True))
    assert row["state"] == "closed" and row["state_at"] == NOW


def test_overdue_is_what_outreach_states_on_the_case_event_never_a_deadline_of_reporting():
    facts = {
        "case_id": "k1",
        "student_id": "s1",
        "org_path": "/620400/620402/s1/g1/c1",
        "risk_level": Severity.URGENT,
        "categories": [Category.SAFETY_RISK],
        "occurred_at": NOW,
    }
    escalated = out.CaseEscalated(**facts, overdue=True, escalated_to="/620400/620402/s1", reason="x", due_at=NOW)
    row = dict(zip(OP_COLUMNS["case"], project(type_of(out.CaseEscalated), escalated)[0][1], strict=True))
    assert (row["overdue"], row["overdue_at"]) == (True, NOW)
    contact = out.CaseContactLogged(
        **facts, overdue=False, contact_id="x", mode="home", contacted_at=NOW, first_contact=True
    )
    row = dict(zip(OP_COLUMNS["case"], project(type_of(out.CaseContactLogged), contact)[0][1], strict=True))
    assert (row["overdue"], row["overdue_at"]) == (False, NOW)
    # An event from before the field: no statement, so it changes nothing (not even past its deadline).
    opened = out.CaseOpened(**facts, finding_id="f", first_contact_due=NOW, finding_recorded_at=NOW)
    row = dict(zip(OP_COLUMNS["case"], project(type_of(out.CaseOpened), opened)[0][1], strict=True))
    assert (row["overdue"], row["overdue_at"]) == (None, None)


def test_rounds_never_put_one_key_twice_in_a_statement():
    op = OPS["assignment"]
    keys = [("a1", 1), ("a2", 1), ("a1", 2), ("a1", 3), ("a3", 1)]
    rows = [(k, "c", "t", "f", "/p", True, NOW, n) for k, n in keys]
    rounds = _rounds(op, rows)
    assert [[r[0] for r in rd] for rd in rounds] == [["a1", "a2", "a3"], ["a1"], ["a1"]]


def test_ancestors_from_the_city_down():
    assert ancestors("/620400/620402/s1") == ["/620400", "/620400/620402", "/620400/620402/s1"]
    assert ancestors("/620400") == ["/620400"]


def test_attendance_keeps_its_channel_and_lectures_their_lecturer_reach_and_group():
    from shared.contracts import committees as cm

    path = "/620400/620402/s1"
    online = cm.AttendanceRecorded(
        parent_school_id="ps",
        session_id="s",
        guardian_id="g",
        org_path=path,
        attended=True,
        occurred_at=NOW,
        online=True,
    )
    [(name, row), *_] = project(type_of(cm.AttendanceRecorded), online)
    assert name == "attendance" and dict(zip(OP_COLUMNS[name], row, strict=True))["online"] is True
    old = cm.AttendanceRecorded.model_validate({**online.model_dump(), "online": None})
    assert (
        dict(zip(OP_COLUMNS["attendance"], project(type_of(cm.AttendanceRecorded), old)[0][1], strict=True))["online"]
        is None
    )
    lecture = cm.LectureGiven(
        lecture_id="lec",
        lecturer_id="l1",
        org_path=path,
        topic=cm.LectureTopic.OTHER,
        given_on=date(2026, 10, 10),
        audience_org_paths=[path + "/g1", path + "/g2"],
        headcount=80,
        occurred_at=NOW,
    )
    given = dict(zip(OP_COLUMNS["lecture"], project(type_of(cm.LectureGiven), lecture)[0][1], strict=True))
    assert (given["lecturer_id"], given["audience_units"], given["headcount"]) == ("l1", 2, 80)
    joined = cm.LecturerJoined(lecturer_id="l1", org_path=path, staff_id=None, occurred_at=NOW)
    left = cm.LecturerLeft(lecturer_id="l1", org_path=path, occurred_at=NOW)
    assert project(type_of(cm.LecturerJoined), joined)[0] == ("lecturer", ("l1", path, True, NOW))
    assert project(type_of(cm.LecturerLeft), left)[0] == ("lecturer", ("l1", path, False, NOW))

"""Committees, parent schools, instructor teams and lectures through HTTP, with the exact events they publish."""

from __future__ import annotations

from typing import Any

import pytest

from demo import citygen
from tests.integration.committees.conftest import BUREAU

pytestmark = pytest.mark.integration

COOP_TOPICS = (
    "committees.committee.",
    "committees.parent_school.",
    "committees.instructor_team.",
    "committees.lecture.",
)


async def guardians_of_class(svc, class_id: str) -> list[str]:
    """Guardian ids of the students of a class, through the API."""
    r = await svc.http.get("/api/v1/students", params={"class_id": class_id, "limit": 500}, headers=BUREAU)
    out: list[str] = []
    for s in r.json()["items"]:
        fam = (await svc.http.get(f"/api/v1/families/{s['family_id']}", headers=BUREAU)).json()
        out += [g["guardian_id"] for g in fam["guardians"] if g["guardian_id"] not in out]
    return out


def coop(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"].startswith(COOP_TOPICS)]


async def test_cooperation_structure_and_its_events(svc, small_city):
    city = small_city
    await svc.run_import(body=citygen.to_json(city))
    school = next(u for u in city.org_units if u.level == "school" and u.school_type == "primary")
    other_school = next(u for u in city.org_units if u.level == "school" and u.org_unit_id != school.org_unit_id)
    classes = [
        u.org_unit_id
        for u in city.org_units
        if u.level == "class" and u.org_unit_id.startswith(school.org_unit_id + "-")
    ]
    c1, c2 = classes[0], classes[1]
    g_in = await guardians_of_class(svc, c1)
    g_out = [g for g in await guardians_of_class(svc, c2) if g not in g_in]
    g_far = (
        await guardians_of_class(
            svc,
            next(
                u.org_unit_id
                for u in city.org_units
                if u.level == "class" and u.org_unit_id.startswith(other_school.org_unit_id + "-")
            ),
        )
    )[0]
    school_path = (await svc.http.get(f"/api/v1/org-units/{school.org_unit_id}", headers=BUREAU)).json()["org_path"]
    c1_path = f"{school_path}/{c1.rsplit('-', 1)[0]}/{c1}"
    h = BUREAU

    # Parent committee of a class: one active per unit, members must be guardians of a student in the class.
    r = await svc.http.post("/api/v1/committees", json={"org_unit_id": c1, "formed_on": "2026-09-10"}, headers=h)
    assert r.status_code == 201, r.text
    cm = r.json()["committee_id"]
    assert r.json()["level"] == "class" and r.json()["org_path"] == c1_path
    rejected = [
        await svc.http.post("/api/v1/committees", json={"org_unit_id": c1, "formed_on": "2026-09-11"}, headers=h),
        await svc.http.post("/api/v1/committees", json={"org_unit_id": "620400", "formed_on": "2026-09-11"}, headers=h),
        await svc.http.post(
            f"/api/v1/committees/{cm}/members",
            json={"guardian_id": g_out[0], "role": "member", "term_start": "2026-09-10"},
            headers=h,
        ),
        await svc.http.post(
            f"/api/v1/committees/{cm}/members",
            json={"guardian_id": g_in[0], "role": "chair", "term_start": "2026-09-10", "term_end": "2026-09-01"},
            headers=h,
        ),
    ]
    assert [x.status_code for x in rejected] == [409, 422, 422, 422]
    # ids that do not exist, in the body or the `under` filter: 404 naming the field (documented on the route)
    nowhere = await svc.http.post(
        "/api/v1/committees", json={"org_unit_id": "nowhere", "formed_on": "2026-09-11"}, headers=h
    )
    under = await svc.http.get("/api/v1/committees", params={"under": "nowhere"}, headers=h)
    assert [(x.status_code, x.json()["errors"][0]["pointer"]) for x in (nowhere, under)] == [
        (404, "/org_unit_id"),
        (404, "/query/under"),
    ]
    assert rejected[2].json()["errors"][0]["pointer"] == "/guardian_id"
    assert rejected[3].json()["errors"][0]["pointer"] == "/term_end"
    for g, role in [(g_in[0], "chair"), (g_in[1], "secretary")]:
        r = await svc.http.post(
            f"/api/v1/committees/{cm}/members",
            json={"guardian_id": g, "role": role, "term_start": "2026-09-10", "term_end": "2028-07-01"},
            headers=h,
        )
        assert r.status_code == 201, r.text
    again = await svc.http.post(
        f"/api/v1/committees/{cm}/members", json={"guardian_id": g_in[0], "term_start": "2026-09-10"}, headers=h
    )
    assert again.status_code == 409
    assert (await svc.http.delete(f"/api/v1/committees/{cm}/members/{g_in[1]}", headers=h)).status_code == 200
    assert (await svc.http.delete(f"/api/v1/committees/{cm}/members/{g_in[1]}", headers=h)).status_code == 404
    detail = (await svc.http.get(f"/api/v1/committees/{cm}", headers=h)).json()
    assert [m["guardian_id"] for m in detail["members"]] == [g_in[0]]
    r = await svc.http.post(f"/api/v1/committees/{cm}/dissolve", json={"dissolved_on": "2027-07-01"}, headers=h)
    assert r.status_code == 200 and r.json()["members_left"] == [g_in[0]]
    r = await svc.http.post("/api/v1/committees", json={"org_unit_id": c1, "formed_on": "2027-09-01"}, headers=h)
    assert r.status_code == 201
    cm2 = r.json()["committee_id"]

    # Parent school, a session, enrolment and attendance.
    r = await svc.http.post(
        "/api/v1/parent-schools",
        json={"org_unit_id": school.org_unit_id, "kind": "school", "name": "家长学校"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ps = r.json()["parent_school_id"]
    bad_kind = await svc.http.post(
        "/api/v1/parent-schools", json={"org_unit_id": school.org_unit_id, "kind": "county", "name": "x"}, headers=h
    )
    assert bad_kind.status_code == 422
    r = await svc.http.post(
        f"/api/v1/parent-schools/{ps}/sessions",
        json={"topic": "如何陪伴留守儿童", "held_on": "2026-10-12", "mode": "in_person", "speaker": "张老师"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ss = r.json()["session_id"]
    base = f"/api/v1/parent-schools/{ps}/sessions/{ss}"
    g1, g2 = g_in[0], g_out[0]
    bad_enrol = await svc.http.post(f"{base}/enrolments", json={"guardian_ids": [g1, g_far]}, headers=h)
    assert bad_enrol.status_code == 422 and bad_enrol.json()["errors"][0]["pointer"] == "/guardian_ids/1"
    assert (await svc.http.post(f"{base}/enrolments", json={"guardian_ids": [g1, g2]}, headers=h)).json()["added"] == 2
    r = await svc.http.post(
        f"{base}/attendance",
        json={"records": [{"guardian_id": g1, "attended": True}, {"guardian_id": g2, "attended": False}]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["attendance_rate"] == 0.5 and r.json()["changed"] == 2
    r = await svc.http.post(f"{base}/attendance", json={"records": [{"guardian_id": g1, "attended": True}]}, headers=h)
    assert r.json()["changed"] == 0  # unchanged: nothing published
    r = await svc.http.post(f"{base}/attendance", json={"records": [{"guardian_id": g2, "attended": True}]}, headers=h)
    assert r.json()["changed"] == 1 and r.json()["attendance_rate"] == 1.0
    r = await svc.http.post(f"{base}/held", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "held"
    assert (await svc.http.post(f"{base}/held", headers=h)).status_code == 409
    r = await svc.http.get(f"/api/v1/guardians/{g1}/attendance", headers=h)
    assert r.json() == {"guardian_id": g1, "expected": 1, "attended": 1, "attendance_rate": 1.0}

    # Instructor team with a lead from the school's staff and an outside expert.
    mh = next(s for s in city.staff if s.org_unit_id == school.org_unit_id and "mental_health_teacher" in s.roles)
    vp = next(s for s in city.staff if s.org_unit_id == school.org_unit_id and "vice_principal" in s.roles)
    far = next(s for s in city.staff if s.org_unit_id == other_school.org_unit_id)
    r = await svc.http.post(
        "/api/v1/instructor-teams", json={"org_unit_id": school.org_unit_id, "name": "家庭教育指导团队"}, headers=h
    )
    assert r.status_code == 201
    tm = r.json()["team_id"]
    members = []
    for body in [
        {"role": "vice_principal_in_charge", "staff_id": vp.staff_id, "is_lead": True},
        {"role": "mental_health_teacher", "staff_id": mh.staff_id},
        {"role": "expert_scholar", "name": "赵教授"},
    ]:
        r = await svc.http.post(f"/api/v1/instructor-teams/{tm}/members", json=body, headers=h)
        assert r.status_code == 201, r.text
        members.append(r.json()["member_id"])
    rejected_members = [
        await svc.http.post(
            f"/api/v1/instructor-teams/{tm}/members",
            json={"role": "class_teacher", "staff_id": far.staff_id},
            headers=h,
        ),
        await svc.http.post(
            f"/api/v1/instructor-teams/{tm}/members",
            json={"role": "outstanding_parent", "name": "王家长", "is_lead": True},
            headers=h,
        ),
        await svc.http.post(
            f"/api/v1/instructor-teams/{tm}/members", json={"role": "class_teacher", "name": "外人"}, headers=h
        ),
    ]
    assert [x.status_code for x in rejected_members] == [422, 409, 422]
    assert (await svc.http.delete(f"/api/v1/instructor-teams/{tm}/members/{members[2]}", headers=h)).status_code == 200

    # A lecturer gives a lecture on the Family Education Promotion Law.
    r = await svc.http.post("/api/v1/lecturers", json={"org_unit_id": "620402", "staff_id": vp.staff_id}, headers=h)
    assert r.status_code == 201, r.text
    lr = r.json()["lecturer_id"]
    r = await svc.http.post(
        "/api/v1/lectures",
        json={
            "lecturer_id": lr,
            "topic": "family_education_promotion_law",
            "given_on": "2026-11-02",
            "audience_org_unit_ids": [school.org_unit_id, "620403"],
            "headcount": 240,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    lc = r.json()["lecture_id"]
    bad_lecture = await svc.http.post(
        "/api/v1/lectures",
        json={
            "lecturer_id": lr,
            "topic": "other",
            "given_on": "2026-11-02",
            "audience_org_unit_ids": ["nope"],
            "headcount": 1,
        },
        headers=h,
    )
    # an audience unit that does not exist: 404 naming it (the request is schema-valid; the id is unknown)
    assert bad_lecture.status_code == 404
    assert bad_lecture.json()["errors"] == [{"pointer": "/audience_org_unit_ids/0", "detail": "no such org unit"}]
    unknown_lecturer = await svc.http.post(
        "/api/v1/lectures",
        json={
            "lecturer_id": "nobody",
            "topic": "other",
            "given_on": "2026-11-02",
            "audience_org_unit_ids": [c1],
            "headcount": 1,
        },
        headers=h,
    )
    assert unknown_lecturer.status_code == 404 and unknown_lecturer.json()["errors"][0]["pointer"] == "/lecturer_id"

    await svc.drained()
    events = coop(await svc.events())
    got = sorted((e["type"], e["key"]) for e in events)
    assert got == sorted(
        [
            ("committees.committee.formed.v1", cm),
            ("committees.committee.member_joined.v1", cm),
            ("committees.committee.member_joined.v1", cm),
            ("committees.committee.member_left.v1", cm),
            ("committees.committee.member_left.v1", cm),  # the chair leaves when the committee is dissolved
            ("committees.committee.dissolved.v1", cm),
            ("committees.committee.formed.v1", cm2),
            ("committees.parent_school.established.v1", ps),
            ("committees.parent_school.session_scheduled.v1", ps),
            ("committees.parent_school.attendance_recorded.v1", ps),
            ("committees.parent_school.attendance_recorded.v1", ps),
            ("committees.parent_school.attendance_recorded.v1", ps),
            ("committees.parent_school.session_held.v1", ps),
            ("committees.instructor_team.formed.v1", tm),
            ("committees.instructor_team.member_added.v1", tm),
            ("committees.instructor_team.member_added.v1", tm),
            ("committees.instructor_team.member_added.v1", tm),
            ("committees.instructor_team.member_removed.v1", tm),
            ("committees.lecture.given.v1", lc),
        ]
    )

    def one(type_: str, **match: Any) -> dict[str, Any]:
        found = [
            e["data"] for e in events if e["type"] == type_ and all(e["data"].get(k) == v for k, v in match.items())
        ]
        assert len(found) == 1, (type_, match, found)
        return found[0]

    assert one("committees.committee.formed.v1", committee_id=cm) | {"occurred_at": None} == {
        "committee_id": cm,
        "org_unit_id": c1,
        "org_path": c1_path,
        "level": "class",
        "formed_on": "2026-09-10",
        "occurred_at": None,
    }
    joined = one("committees.committee.member_joined.v1", guardian_id=g_in[0])
    assert (joined["role"], joined["term_start"], joined["term_end"]) == ("chair", "2026-09-10", "2028-07-01")
    assert one("committees.committee.dissolved.v1")["dissolved_on"] == "2027-07-01"
    assert one("committees.parent_school.established.v1")["kind"] == "school"
    sched = one("committees.parent_school.session_scheduled.v1")
    assert (sched["session_id"], sched["topic"], sched["held_on"], sched["mode"]) == (
        ss,
        "如何陪伴留守儿童",
        "2026-10-12",
        "in_person",
    )
    att = [
        (e["data"]["guardian_id"], e["data"]["attended"])
        for e in events
        if e["type"].endswith("attendance_recorded.v1")
    ]
    assert sorted(att) == sorted([(g1, True), (g2, False), (g2, True)])
    assert one("committees.parent_school.session_held.v1")["enrolled"] == 2
    lead = one("committees.instructor_team.member_added.v1", is_lead=True)
    assert (lead["staff_id"], lead["role"], lead["org_path"]) == (vp.staff_id, "vice_principal_in_charge", school_path)
    expert = one("committees.instructor_team.member_added.v1", role="expert_scholar")
    assert expert["staff_id"] is None and "赵教授" not in str(events)
    assert one("committees.instructor_team.member_removed.v1")["member_id"] == members[2]
    lecture = one("committees.lecture.given.v1")
    assert lecture["audience_org_paths"] == sorted([school_path, "/620400/620403"])
    assert (lecture["topic"], lecture["headcount"], lecture["lecturer_id"]) == (
        "family_education_promotion_law",
        240,
        lr,
    )


async def test_a_staff_member_who_leaves_leaves_every_instructor_team_they_sat_on(svc, small_city):
    """A leaver stays on no team: the team lists only those still at the school, and `member_removed` tells the
    other services (outreach takes team members as carers) that the leaver's seat is empty."""
    city = small_city
    await svc.run_import(body=citygen.to_json(city))
    school = next(u for u in city.org_units if u.level == "school")
    leaver, stays = [s for s in city.staff if s.org_unit_id == school.org_unit_id][:2]
    h = BUREAU
    teams, seats = [], {}
    for name in ("家庭教育指导团队", "心理健康团队"):
        r = await svc.http.post(
            "/api/v1/instructor-teams", json={"org_unit_id": school.org_unit_id, "name": name}, headers=h
        )
        tm = r.json()["team_id"]
        teams.append(tm)
        for s in (leaver, stays):
            body = {"role": "class_teacher", "staff_id": s.staff_id}
            r = await svc.http.post(f"/api/v1/instructor-teams/{tm}/members", json=body, headers=h)
            assert r.status_code == 201, r.text
            seats[(tm, s.staff_id)] = r.json()["member_id"]

    r = await svc.http.delete(f"/api/v1/staff/{leaver.staff_id}", headers=h)
    assert r.status_code == 200 and r.json()["active"] is False
    for tm in teams:
        members = (await svc.http.get(f"/api/v1/instructor-teams/{tm}", headers=h)).json()["members"]
        assert [m["staff_id"] for m in members] == [stays.staff_id]
        # the leaver's seat is no longer an active membership
        assert (
            await svc.http.delete(f"/api/v1/instructor-teams/{tm}/members/{seats[(tm, leaver.staff_id)]}", headers=h)
        ).status_code == 404

    # leaving again changes nothing and publishes nothing more
    assert (await svc.http.delete(f"/api/v1/staff/{leaver.staff_id}", headers=h)).status_code == 200

    await svc.drained()
    removed = sorted(
        (e["data"]["team_id"], e["data"]["member_id"])
        for e in await svc.events()
        if e["type"] == "committees.instructor_team.member_removed.v1"
    )
    assert removed == sorted((tm, seats[(tm, leaver.staff_id)]) for tm in teams)

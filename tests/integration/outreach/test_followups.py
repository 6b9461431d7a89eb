"""Follow-ups nobody forgets, on the real stack with an injected clock: a missed review escalates like a missed
first contact, an accepted referral nobody resolves is chased up the tree, a leaver's cases go to someone else."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from services.outreach.app import create
from services.outreach.settings import OutreachSettings
from services.outreach.usecases.deadlines import tick
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.committees import InstructorTeamMemberAdded, StaffLeft, TeamRole
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CASE, REFERRAL_TOPICS
from shared.db import create_pool
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.outreach.helpers import DISTRICT, by_type, finding, now, publish, school, school_staff

pytestmark = pytest.mark.integration


def bearer(**kw: object) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(**kw)}  # type: ignore[arg-type]


CLASS_TEACHER = bearer(role="teacher", org_path=school(), staff_id="t-head-c2", subject="t-head-c2")
DPF = bearer(role="department_partner", org_path="/620400", department="disabled_persons_federation", subject="dpf")


def _at(doc: dict[str, object], key: str) -> datetime:
    return datetime.fromisoformat(str(doc[key]))


async def test_a_missed_review_is_escalated_by_the_clock_and_a_contact_ends_it(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    pool = await create_pool(settings.database_url, settings.db_schema)
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, school_staff())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        await publish(settings, [finding("stu-r", Category.DISABILITY, Severity.HIGH, recorded_at=clock.now())])
        case_id = await wait_for(lambda: pool.fetchval("SELECT case_id FROM cases WHERE state = 'assigned'"))

        contact = {"contacted_at": clock.now().isoformat(), "mode": "in_home", "outcome": "plan agreed"}
        r = await http.post(f"/api/v1/cases/{case_id}/contacts", json=contact, headers=CLASS_TEACHER)
        assert r.status_code == 201, r.text
        review = _at(r.json(), "next_review_at")
        assert review == clock.now() + timedelta(days=14)  # risk high: reviewed within 14 days at the latest

        clock.advance(timedelta(days=14) - timedelta(minutes=1))
        assert (await tick(pool, settings, clock)).escalated_cases == 0  # type: ignore[union-attr]
        clock.advance(timedelta(minutes=2))  # the review date passed without a contact
        assert (await tick(pool, settings, clock)).escalated_cases == 1  # type: ignore[union-attr]
        case = await pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
        assert case["overdue"] and case["escalation_level"] == 1 and case["escalated_to"] == DISTRICT
        reasons = await pool.fetch("SELECT reason, due_at FROM case_escalations WHERE case_id = $1", case_id)
        assert [(x["reason"], x["due_at"]) for x in reasons] == [("review_overdue", review)]

        # The carer reviews the case: not overdue any more, a fresh review date from this contact, level 0 again.
        contact["contacted_at"] = clock.now().isoformat()
        contact["next_review_at"] = (clock.now() + timedelta(days=3)).isoformat()
        r = await http.post(f"/api/v1/cases/{case_id}/contacts", json=contact, headers=CLASS_TEACHER)
        assert r.status_code == 201, r.text
        assert _at(r.json(), "next_review_at") == clock.now() + timedelta(days=3)  # the carer's earlier date
        case = await pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
        assert not case["overdue"] and case["escalation_level"] == 0

        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CASE), expect=5)
        kinds = by_type(messages)
        [escalated] = [m["value"]["data"] for m in kinds["outreach.case.escalated.v1"]]
        assert (escalated["reason"], escalated["overdue"], escalated["escalated_to"]) == (
            "review_overdue",
            True,
            DISTRICT,
        )
        logged = [m["value"]["data"] for m in kinds["outreach.case.contact_logged.v1"]]
        assert [datetime.fromisoformat(x["next_review_at"]) for x in logged] == [
            review,
            clock.now() + timedelta(days=3),
        ]
    await pool.close()


async def test_an_accepted_referral_nobody_resolves_is_chased_up_the_tree(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    pool = await create_pool(settings.database_url, settings.db_schema)
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, school_staff())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        await publish(settings, [finding("stu-d", Category.DISABILITY, Severity.HIGH, recorded_at=clock.now())])
        ref = await wait_for(lambda: pool.fetchval("SELECT referral_id FROM referrals"))
        assert (await http.post(f"/api/v1/referrals/{ref}/acknowledge", headers=DPF)).status_code == 200
        accepted = await http.post(f"/api/v1/referrals/{ref}/accept", headers=DPF)
        assert accepted.status_code == 200, accepted.text
        assert _at(accepted.json(), "resolve_by") == clock.now() + timedelta(days=30)

        clock.advance(timedelta(days=30) - timedelta(minutes=1))
        assert (await tick(pool, settings, clock)).chased_referrals == 0  # type: ignore[union-attr]
        clock.advance(timedelta(minutes=2))
        assert (await tick(pool, settings, clock)).chased_referrals == 1  # type: ignore[union-attr]
        row = await pool.fetchrow("SELECT * FROM referrals WHERE referral_id = $1", ref)
        assert (row["state"], row["escalation_level"], row["escalated_to"]) == ("accepted", 1, DISTRICT)
        assert row["resolve_by"] == clock.now() + timedelta(days=30)  # chased again a period later
        assert (await tick(pool, settings, clock)).chased_referrals == 0  # type: ignore[union-attr]

        # Resolved: nothing is chased any more, however long it waits.
        assert (await http.post(f"/api/v1/referrals/{ref}/resolve", headers=DPF)).status_code == 200
        clock.advance(timedelta(days=90))
        assert (await tick(pool, settings, clock)).chased_referrals == 0  # type: ignore[union-attr]

        topics = [settings.topic(t) for t in REFERRAL_TOPICS]
        messages = await read_topic(settings.kafka_bootstrap_servers, topics, expect=5)
        [chased] = [m["value"]["data"] for m in by_type(messages)["outreach.referral.escalated.v1"]]
        assert (chased["reason"], chased["escalated_to"]) == ("unresolved", DISTRICT)
    await pool.close()


async def test_a_leavers_open_cases_are_handed_to_whoever_the_rules_choose(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    pool = await create_pool(settings.database_url, settings.db_schema)
    async with serve(create(settings, clock)):
        await publish(settings, school_staff())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        await publish(
            settings,
            [
                finding("stu-1", Category.LEFT_BEHIND, Severity.MEDIUM, recorded_at=clock.now()),
                finding("stu-2", Category.MENTAL_HEALTH, Severity.HIGH, recorded_at=clock.now()),
            ],
        )
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM case_carers"))
        carers = "SELECT c.student_id, cc.staff_id, cc.role FROM case_carers cc JOIN cases c USING (case_id) ORDER BY 1"
        assert [tuple(r) for r in await pool.fetch(carers)] == [
            ("stu-1", "t-head-c2", "class_teacher"),
            ("stu-2", "mh-1", "mental_health_teacher"),
        ]

        # The class teacher leaves and nobody heads the class yet: the school's stand-in takes the child's case.
        await publish(settings, [StaffLeft(staff_id="t-head-c2", org_path=school(), occurred_at=now())])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM case_carers WHERE staff_id = 't-head-c2'"))
        assert [tuple(r) for r in await pool.fetch(carers)] == [
            ("stu-1", "vp-1", "class_teacher"),
            ("stu-2", "mh-1", "mental_health_teacher"),
        ]
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CASE), expect=5)
        assigned = [m["value"]["data"] for m in by_type(messages)["outreach.case.assigned.v1"]]
        handed = [a for a in assigned if a["student_id"] == "stu-1"][-1]
        assert [(c["staff_id"], c["role"]) for c in handed["carers"]] == [("vp-1", "class_teacher")]
        assert len([a for a in assigned if a["student_id"] == "stu-2"]) == 1  # the other case was not touched
    await pool.close()


async def test_a_leaver_on_the_schools_instructor_team_is_not_handed_their_own_cases_back(make_settings):
    """Found by the demo: the mental-health teacher also sat on the school's instructor team, whose membership
    committees keeps after they leave; the hand-over picked them again from the team and nothing changed."""
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    pool = await create_pool(settings.database_url, settings.db_schema)
    team_member = InstructorTeamMemberAdded(
        team_id="team-1",
        member_id="m-1",
        staff_id="mh-1",
        org_path=school(),
        role=TeamRole.MENTAL_HEALTH_TEACHER,
        is_lead=False,
        occurred_at=now(),
    )
    async with serve(create(settings, clock)):
        await publish(settings, [*school_staff(), team_member])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 1 FROM team_members"), timeout=15)
        await publish(settings, [finding("stu-2", Category.MENTAL_HEALTH, Severity.HIGH, recorded_at=clock.now())])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 1 FROM case_carers WHERE staff_id = 'mh-1'"))

        await publish(settings, [StaffLeft(staff_id="mh-1", org_path=school(), occurred_at=now())])
        await wait_for(lambda: pool.fetchval("SELECT NOT active FROM staff WHERE staff_id = 'mh-1'"))
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM case_carers WHERE staff_id = 'mh-1'"))
        # and a new case at the school does not go to them either
        await publish(settings, [finding("stu-3", Category.MENTAL_HEALTH, Severity.HIGH, recorded_at=clock.now())])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM cases"))
        assert await pool.fetchval("SELECT count(*) FROM case_carers WHERE staff_id = 'mh-1'") == 0
    await pool.close()

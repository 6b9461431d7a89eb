"""Event handlers: findings open or join care cases; directory events keep the directory copy."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.clock import Clock
from services.outreach.domain import CaseState
from services.outreach.settings import Rules
from services.outreach.store import cases, directory, groups, referrals
from shared.contracts import committees as dir_ev
from shared.contracts.common import Category, Severity, StaffRole
from shared.contracts.outreach import (
    CarerAssignment,
    CaseAssigned,
    CaseJoined,
    CaseOpened,
    CaseReopened,
    GroupMembershipRegistered,
    GroupSource,
    ReferralRequested,
    SpecialGroup,
)
from shared.contracts.visits import FindingRecorded
from shared.events import Event
from shared.inbox import Handler
from shared.outbox import add_events

FINDINGS_GROUP = "outreach.findings"
DIRECTORY_GROUP = "outreach.directory"


def new_id() -> str:
    return str(uuid.uuid4())


class Reaction:
    """Applies findings to care cases: one open case per child, whatever the delivery order or repetition."""

    def __init__(self, rules: Rules, clock: Clock) -> None:
        self.rules = rules
        self.clock = clock

    async def on_finding(self, conn: asyncpg.Connection, event: Event[FindingRecorded]) -> None:
        """Open, join or reopen the child's case; assign carers, register groups, ask departments."""
        f = event.payload
        for _ in range(3):
            ctx = await cases.finding_context(conn, f.finding_id, f.student_id)
            if ctx["seen"]:
                return  # replay or redelivery under another consumer group: already applied
            if await self._apply(conn, f, ctx):
                return
            # Another transaction opened the child's case between our read and our insert: join it instead.
        raise RuntimeError(f"could not settle the case of finding {f.finding_id}")

    async def _apply(self, conn: asyncpg.Connection, f: FindingRecorded, ctx: asyncpg.Record) -> bool:
        rules, now = self.rules, self.clock.now()
        qualifies = domain.opens_case(rules, f.category, f.severity)
        has_case = ctx["case_id"] is not None
        is_open = has_case and ctx["state"] != CaseState.CLOSED
        due = domain.contact_due(rules, f.severity, f.recorded_at)
        payloads: list[BaseModel] = []
        if is_open:
            if not qualifies and not rules.join_non_qualifying:
                return True
            case_id, effect = ctx["case_id"], "joined"
            categories = _merge(ctx["categories"], f.category)
            max_sev = domain.max_severity([Severity(ctx["max_severity"]), f.severity])
            contact_due, escalation_due = ctx["contact_due"], ctx["escalation_due"]
            if qualifies:
                contact_due = _least(contact_due, due)
                escalation_due = _least(escalation_due, due)
            state = CaseState(ctx["state"])
            known_roles = set(ctx["carer_roles"] or [])
        elif qualifies and has_case and _within(ctx["closed_at"], now, rules):
            case_id, effect = ctx["case_id"], "reopened"
            categories, max_sev = [f.category], f.severity
            contact_due = escalation_due = due
            state, known_roles = CaseState.OPEN, set()
        elif qualifies:
            case_id, effect = new_id(), "opened"
            categories, max_sev = [f.category], f.severity
            contact_due = escalation_due = due
            state, known_roles = CaseState.OPEN, set()
        else:
            return True  # a minor finding about a child without an open case: nothing to care for

        # Carers: roles this finding calls for that the case does not have yet.
        wanted = [r for r in domain.carer_roles(rules, f.category, f.severity) if r not in known_roles]
        carers: list[domain.Carer] = []
        if wanted:
            class_id = domain.class_of(f.org_path)
            levels = domain.org_levels(f.org_path)
            lookup = sorted({*wanted, *rules.fallback_carer_roles})
            staff = await directory.carer_candidates(conn, class_id, levels, lookup)
            carers = domain.choose_carers(rules, wanted, class_id, f.org_path, staff)
        state = domain.state_after_assignment(state, bool(carers) or bool(known_roles))
        risk = domain.risk_level(rules, [max_sev], categories)
        row = {
            "case_id": case_id,
            "student_id": f.student_id,
            "org_path": f.org_path,
            "state": str(state),
            "risk_level": str(risk),
            "max_severity": str(max_sev),
            "categories": [str(c) for c in categories],
            "opened_at": now,
            "finding_recorded_at": f.recorded_at,
            "contact_due": contact_due,
            "escalation_due": escalation_due,
            "now": now,
        }
        if effect == "opened":
            if not await cases.insert_case(conn, row):
                return False
        else:
            await cases.update_case_for_finding(conn, row, reopen=effect == "reopened")
        await cases.add_finding(conn, case_id, f, effect)
        await cases.add_carers(conn, case_id, carers, now)

        org_path = f.org_path if effect != "joined" else ctx["org_path"]
        facts: dict[str, Any] = {
            "case_id": case_id,
            "student_id": f.student_id,
            "org_path": org_path,
            "risk_level": risk,
            "categories": categories,
            "occurred_at": now,
        }
        if effect == "opened":
            payloads.append(
                CaseOpened(**facts, finding_id=f.finding_id, first_contact_due=due, finding_recorded_at=f.recorded_at)
            )
        elif effect == "reopened":
            payloads.append(CaseReopened(**facts, finding_id=f.finding_id, first_contact_due=due))
        else:
            payloads.append(CaseJoined(**facts, finding_id=f.finding_id, first_contact_due=contact_due or due))
        if carers:
            all_carers = (
                [
                    CarerAssignment(staff_id=r["staff_id"], role=StaffRole(r["role"]), org_path=r["org_path"])
                    for r in await cases.carers_of(conn, case_id)
                ]
                if known_roles
                else [CarerAssignment(staff_id=c.staff_id, role=c.role, org_path=c.org_path) for c in carers]
            )
            payloads.append(CaseAssigned(**facts, carers=all_carers))

        group = domain.special_group(rules, f.category)
        if group is not None:
            m = await groups.register(conn, new_id(), f.student_id, group, GroupSource.VISIT_FINDING, f.org_path, now)
            if m is not None:
                payloads.append(_membership_event(m, now))

        # Every finding applied to a case asks the mapped departments (Rules.referral_min_severity filters).
        payloads.extend(
            await request_referrals(conn, rules, case_id, f.student_id, f.org_path, [(f.category, f.severity)], now)
        )
        await add_events(conn, payloads)
        return True


async def request_referrals(
    conn: asyncpg.Connection,
    rules: Rules,
    case_id: str,
    student_id: str,
    class_path: str,
    wanted: list[tuple[Category, Severity]],
    now: datetime,
    departments: list[Any] | None = None,
) -> list[BaseModel]:
    """Ask the mapped (or given) departments for help; already-open referrals are not asked twice."""
    rows = []
    for category, severity in wanted:
        for dept in departments or domain.referral_departments(rules, category, severity):
            rows.append(
                {
                    "referral_id": new_id(),
                    "case_id": case_id,
                    "student_id": student_id,
                    "department": str(dept),
                    "category": str(category),
                    "urgency": str(severity),
                    "org_path": domain.school_path(class_path),
                    "class_path": class_path,
                    "requested_at": now,
                    "acknowledge_by": now + timedelta(days=rules.referral_ack_days),
                }
            )
    created = await referrals.request(conn, rows)
    return [
        ReferralRequested(
            referral_id=r["referral_id"],
            case_id=case_id,
            department=r["department"],
            category=r["category"],
            urgency=r["urgency"],
            org_path=r["org_path"],
            occurred_at=now,
            acknowledge_by=r["acknowledge_by"],
        )
        for r in created
    ]


def _membership_event(m: asyncpg.Record, now: datetime) -> GroupMembershipRegistered:
    return GroupMembershipRegistered(
        membership_id=m["membership_id"],
        student_id=m["student_id"],
        group=SpecialGroup(m["group"]),
        source=GroupSource(m["source"]),
        org_path=m["org_path"],
        occurred_at=now,
    )


def _merge(existing: list[str], category: Category) -> list[Category]:
    out = [Category(c) for c in existing]
    if category not in out:
        out.append(category)
    return out


def _least(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _within(closed_at: datetime | None, now: datetime, rules: Rules) -> bool:
    """Whether a closed case is recent enough to reopen rather than open a new one."""
    return closed_at is not None and now - closed_at <= timedelta(days=rules.reopen_within_days)


class DirectoryCopy:
    """Keeps the directory facts outreach needs; a family whose parents work away enters the left-behind group."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def on_org_unit(self, conn: asyncpg.Connection, event: Event[dir_ev.OrgUnitFacts]) -> None:
        p = event.payload
        await directory.upsert_org_unit(conn, p.org_unit_id, p.parent_id, p.level, p.org_path, p.occurred_at)

    async def on_staff(self, conn: asyncpg.Connection, event: Event[dir_ev.StaffFacts]) -> None:
        p = event.payload
        await directory.upsert_staff(
            conn, p.staff_id, p.org_path, [str(r) for r in p.roles], p.class_ids, p.head_class_id, p.occurred_at
        )

    async def on_staff_left(self, conn: asyncpg.Connection, event: Event[dir_ev.StaffLeft]) -> None:
        p = event.payload
        await directory.staff_left(conn, p.staff_id, p.org_path, p.occurred_at)

    async def on_team_member(self, conn: asyncpg.Connection, event: Event[dir_ev.InstructorTeamMemberAdded]) -> None:
        p = event.payload
        await directory.upsert_team_member(
            conn, p.team_id, p.member_id, p.staff_id, p.org_path, str(p.role), p.occurred_at
        )

    async def on_team_member_removed(
        self, conn: asyncpg.Connection, event: Event[dir_ev.InstructorTeamMemberRemoved]
    ) -> None:
        p = event.payload
        await directory.remove_team_member(conn, p.team_id, p.member_id, p.occurred_at)

    async def on_student(self, conn: asyncpg.Connection, event: Event[dir_ev.StudentFacts]) -> None:
        p = event.payload
        await directory.upsert_student(conn, p.student_id, p.class_id, p.org_path, p.family_id, p.occurred_at)
        # A family flag seen before the student: the membership can be placed now.
        flagged = await conn.fetchval(
            "SELECT parents_work_away FROM families WHERE family_id = $1 AND $2 = ANY(student_ids)",
            p.family_id,
            p.student_id,
        )
        if flagged:
            await self._flag_left_behind(conn, [p.student_id], {p.student_id: p.org_path})

    async def on_student_left(self, conn: asyncpg.Connection, event: Event[dir_ev.StudentLeft]) -> None:
        p = event.payload
        await directory.student_left(conn, p.student_id, p.org_path, p.occurred_at)

    async def on_family(self, conn: asyncpg.Connection, event: Event[dir_ev.FamilyFacts]) -> None:
        p = event.payload
        newest = await directory.upsert_family(
            conn, p.family_id, p.student_ids, p.parents_work_away, str(p.living_arrangement), p.occurred_at
        )
        if not newest:
            return
        if p.parents_work_away:
            paths = await directory.student_paths(conn, p.student_ids)
            await self._flag_left_behind(conn, [s for s in p.student_ids if s in paths], paths)
        else:
            await groups.end_directory_flag(conn, p.student_ids, SpecialGroup.LEFT_BEHIND, self.clock.now())

    async def _flag_left_behind(self, conn: asyncpg.Connection, student_ids: list[str], paths: dict[str, str]) -> None:
        """Register students as left-behind from the directory flag (placed once their class is known)."""
        now = self.clock.now()
        payloads: list[BaseModel] = []
        for sid in student_ids:
            m = await groups.register(
                conn, new_id(), sid, SpecialGroup.LEFT_BEHIND, GroupSource.DIRECTORY_FLAG, paths[sid], now
            )
            if m is not None:
                payloads.append(_membership_event(m, now))
        await add_events(conn, payloads)


def consumers(rules: Rules, clock: Clock) -> dict[str, dict[str, Handler]]:
    """Consumer groups and the event types each applies."""
    reaction = Reaction(rules, clock)
    d = DirectoryCopy(clock)
    return {
        FINDINGS_GROUP: {"visits.finding.recorded.v1": reaction.on_finding},
        DIRECTORY_GROUP: {
            "committees.org_unit.registered.v1": d.on_org_unit,
            "committees.org_unit.changed.v1": d.on_org_unit,
            "committees.staff.registered.v1": d.on_staff,
            "committees.staff.changed.v1": d.on_staff,
            "committees.staff.left.v1": d.on_staff_left,
            "committees.student.registered.v1": d.on_student,
            "committees.student.changed.v1": d.on_student,
            "committees.student.left.v1": d.on_student_left,
            "committees.family.registered.v1": d.on_family,
            "committees.family.changed.v1": d.on_family,
            "committees.instructor_team.member_added.v1": d.on_team_member,
            "committees.instructor_team.member_removed.v1": d.on_team_member_removed,
        },
    }

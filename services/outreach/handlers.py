"""Event handlers: findings open or join care cases (see reaction.py); directory events keep the directory copy."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from services.outreach.reaction import FINDING_TYPE, Reaction
from services.outreach.settings import Rules
from services.outreach.store import directory, groups
from shared.clock import Clock
from shared.contracts import committees as dir_ev
from shared.contracts.outreach import GroupMembershipRegistered, GroupSource, SpecialGroup
from shared.contracts.visits import FindingRecorded
from shared.events import Event
from shared.inbox import Batch, Handler, Locked
from shared.outbox import add_events

FINDINGS_GROUP = "outreach.findings"
DIRECTORY_GROUP = "outreach.directory"


def new_id() -> str:
    return str(uuid.uuid4())


def _membership_event(m: asyncpg.Record, now: datetime) -> GroupMembershipRegistered:
    return GroupMembershipRegistered(
        membership_id=m["membership_id"],
        student_id=m["student_id"],
        group=SpecialGroup(m["group"]),
        source=GroupSource(m["source"]),
        org_path=m["org_path"],
        occurred_at=now,
    )


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


def family_and_students_of(p: dir_ev.FamilyFacts) -> list[str]:
    """A family event reads its students' rows and writes their memberships (see `Locked`)."""
    return [f"family:{p.family_id}", *(f"student:{s}" for s in p.student_ids)]


def student_and_family_of(p: dir_ev.StudentFacts) -> list[str]:
    """A student event reads its family's flag and moves the child's memberships."""
    return [f"family:{p.family_id}", f"student:{p.student_id}"]


def student_of(p: FindingRecorded) -> list[str]:
    """A finding places the child's membership in the class the directory copy knows."""
    return [f"student:{p.student_id}"]


def consumers(rules: Rules, clock: Clock) -> dict[str, dict[str, Handler] | Batch]:
    """The consumer groups and the event types each applies; findings set-based, a lane's poll at a time."""
    d = DirectoryCopy(clock)
    return {
        FINDINGS_GROUP: Batch(frozenset({FINDING_TYPE}), Reaction(rules, clock).on_findings, keys=student_of),
        DIRECTORY_GROUP: {
            "committees.org_unit.registered.v1": d.on_org_unit,
            "committees.org_unit.changed.v1": d.on_org_unit,
            "committees.staff.registered.v1": d.on_staff,
            "committees.staff.changed.v1": d.on_staff,
            "committees.staff.left.v1": d.on_staff_left,
            # A student event reads its family's flag and a family event reads its students' rows: both lock the
            # family, or in parallel lanes (or replicas) neither sees the other's row and the child is never flagged.
            # Both also lock the children, as findings do: every writer of a child's memberships holds its lock, so a
            # move and a finding's membership serialize, and their row locks on memberships cannot deadlock.
            "committees.student.registered.v1": Locked(student_and_family_of, d.on_student),
            "committees.student.changed.v1": Locked(student_and_family_of, d.on_student),
            "committees.student.left.v1": d.on_student_left,
            "committees.family.registered.v1": Locked(family_and_students_of, d.on_family),
            "committees.family.changed.v1": Locked(family_and_students_of, d.on_family),
            "committees.instructor_team.member_added.v1": d.on_team_member,
            "committees.instructor_team.member_removed.v1": d.on_team_member_removed,
        },
    }

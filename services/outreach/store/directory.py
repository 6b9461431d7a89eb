"""The directory copy: org units, staff, instructor teams, students and families (last writer by occurred_at)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.outreach.domain import StaffMember
from shared.contracts.committees import TeamRole
from shared.contracts.common import StaffRole

# Instructor-team roles that make a staff member a possible carer in that role at the team's org unit.
TEAM_ROLE_AS_STAFF_ROLE: dict[str, StaffRole] = {
    TeamRole.VICE_PRINCIPAL_IN_CHARGE: StaffRole.VICE_PRINCIPAL,
    TeamRole.MENTAL_HEALTH_TEACHER: StaffRole.MENTAL_HEALTH_TEACHER,
    TeamRole.IDEOLOGICAL_POLITICAL_TEACHER: StaffRole.IDEOLOGICAL_POLITICAL_TEACHER,
}


async def upsert_org_unit(
    conn: asyncpg.Connection, org_unit_id: str, parent_id: str | None, level: str, org_path: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO org_units VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_unit_id) DO UPDATE SET"
        " parent_id = EXCLUDED.parent_id, level = EXCLUDED.level, org_path = EXCLUDED.org_path,"
        " occurred_at = EXCLUDED.occurred_at WHERE org_units.occurred_at <= EXCLUDED.occurred_at",
        org_unit_id,
        parent_id,
        level,
        org_path,
        at,
    )


async def upsert_staff(
    conn: asyncpg.Connection,
    staff_id: str,
    org_path: str,
    roles: list[str],
    class_ids: list[str],
    head_class_id: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO staff (staff_id, org_path, roles, class_ids, head_class_id, active, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, true, $6) ON CONFLICT (staff_id) DO UPDATE SET"
        " org_path = EXCLUDED.org_path, roles = EXCLUDED.roles, class_ids = EXCLUDED.class_ids,"
        " head_class_id = EXCLUDED.head_class_id, active = true, occurred_at = EXCLUDED.occurred_at"
        " WHERE staff.occurred_at <= EXCLUDED.occurred_at",
        staff_id,
        org_path,
        roles,
        class_ids,
        head_class_id,
        at,
    )


async def staff_left(conn: asyncpg.Connection, staff_id: str, org_path: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO staff (staff_id, org_path, roles, active, occurred_at) VALUES ($1, $2, '{}', false, $3)"
        " ON CONFLICT (staff_id) DO UPDATE SET active = false, occurred_at = EXCLUDED.occurred_at"
        " WHERE staff.occurred_at <= EXCLUDED.occurred_at",
        staff_id,
        org_path,
        at,
    )


async def upsert_team_member(
    conn: asyncpg.Connection,
    team_id: str,
    member_id: str,
    staff_id: str | None,
    org_path: str,
    role: str,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO team_members VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (team_id, member_id) DO UPDATE SET"
        " staff_id = EXCLUDED.staff_id, org_path = EXCLUDED.org_path, role = EXCLUDED.role,"
        " occurred_at = EXCLUDED.occurred_at WHERE team_members.occurred_at <= EXCLUDED.occurred_at",
        team_id,
        member_id,
        staff_id,
        org_path,
        role,
        at,
    )


async def remove_team_member(conn: asyncpg.Connection, team_id: str, member_id: str, at: datetime) -> None:
    await conn.execute(
        "DELETE FROM team_members WHERE team_id = $1 AND member_id = $2 AND occurred_at <= $3", team_id, member_id, at
    )


async def upsert_student(
    conn: asyncpg.Connection, student_id: str, class_id: str, org_path: str, family_id: str, at: datetime
) -> bool:
    """Store a student's placement; True when this event was the newest (memberships then follow the move)."""
    status: str = await conn.execute(
        "INSERT INTO students VALUES ($1, $2, $3, $4, true, $5) ON CONFLICT (student_id) DO UPDATE SET"
        " class_id = EXCLUDED.class_id, org_path = EXCLUDED.org_path, family_id = EXCLUDED.family_id,"
        " active = true, occurred_at = EXCLUDED.occurred_at WHERE students.occurred_at <= EXCLUDED.occurred_at",
        student_id,
        class_id,
        org_path,
        family_id,
        at,
    )
    if status.endswith(" 1"):
        await conn.execute(
            "UPDATE group_memberships SET org_path = $2 WHERE student_id = $1 AND org_path <> $2", student_id, org_path
        )
        return True
    return False


async def student_left(conn: asyncpg.Connection, student_id: str, org_path: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE students SET active = false, occurred_at = $2 WHERE student_id = $1 AND occurred_at <= $2",
        student_id,
        at,
    )


async def upsert_family(
    conn: asyncpg.Connection,
    family_id: str,
    student_ids: list[str],
    parents_work_away: bool,
    living_arrangement: str,
    at: datetime,
) -> bool:
    """Store a family's situation; True when this event was the newest."""
    status: str = await conn.execute(
        "INSERT INTO families VALUES ($1, $2, $3, $4, $5) ON CONFLICT (family_id) DO UPDATE SET"
        " student_ids = EXCLUDED.student_ids, parents_work_away = EXCLUDED.parents_work_away,"
        " living_arrangement = EXCLUDED.living_arrangement, occurred_at = EXCLUDED.occurred_at"
        " WHERE families.occurred_at <= EXCLUDED.occurred_at",
        family_id,
        student_ids,
        parents_work_away,
        living_arrangement,
        at,
    )
    return status.endswith(" 1")


async def student_paths(conn: asyncpg.Connection, student_ids: list[str]) -> dict[str, str]:
    """Class paths of known students."""
    rows = await conn.fetch("SELECT student_id, org_path FROM students WHERE student_id = ANY($1)", student_ids)
    return {r["student_id"]: r["org_path"] for r in rows}


CANDIDATES_MANY = """
SELECT staff_id, roles, org_path, head_class_id FROM staff
 WHERE active AND (head_class_id = ANY($1) OR (org_path = ANY($2) AND roles && $3))
UNION ALL
SELECT staff_id, ARRAY[role], org_path, NULL FROM team_members
 WHERE staff_id IS NOT NULL AND org_path = ANY($2) AND role = ANY($4)
"""


async def carer_candidates_many(
    conn: asyncpg.Connection, class_ids: list[str], levels: list[str], roles: list[StaffRole]
) -> list[StaffMember]:
    """Possible carers for many classes at once: their own teachers and role holders at the levels above."""
    team_roles = [t for t, s in TEAM_ROLE_AS_STAFF_ROLE.items() if s in roles]
    rows = await conn.fetch(CANDIDATES_MANY, class_ids, levels, [str(r) for r in roles], team_roles)
    return [_member(r) for r in rows]


def _member(r: asyncpg.Record) -> StaffMember:
    held = set()
    for role in r["roles"]:
        mapped = TEAM_ROLE_AS_STAFF_ROLE.get(role)
        if mapped is not None:
            held.add(mapped)
        elif role in StaffRole._value2member_map_:
            held.add(StaffRole(role))
    return StaffMember(r["staff_id"], frozenset(held), r["org_path"], r["head_class_id"])

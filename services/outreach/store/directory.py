"""Reads of the directory copy (the kit's tables, written by shared.directory): carers, left-behind children."""

from __future__ import annotations

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


async def left_behind_children(
    conn: asyncpg.Connection, student_ids: list[str], away_family_ids: list[str]
) -> list[tuple[str, str]]:
    """(student, class path) of the children the directory flags as left behind, among the given students (whose
    family, as stored now, has its parents away and lists them) and the children of the given away families."""
    rows = await conn.fetch(
        "SELECT s.student_id, s.org_path FROM students s JOIN families f ON f.family_id = s.family_id"
        " WHERE s.student_id = ANY($1) AND f.parents_work_away AND s.student_id = ANY(f.student_ids)"
        " UNION"
        " SELECT s.student_id, s.org_path FROM families f CROSS JOIN unnest(f.student_ids) AS k(student_id)"
        " JOIN students s ON s.student_id = k.student_id WHERE f.family_id = ANY($2)",
        student_ids,
        away_family_ids,
    )
    return [(r["student_id"], r["org_path"]) for r in rows]


CANDIDATES_MANY = """
SELECT staff_id, roles, org_path, head_class_id FROM staff
 WHERE active AND (head_class_id = ANY($1) OR (org_path = ANY($2) AND roles && $3))
UNION ALL
SELECT staff_id, ARRAY[role], org_path, NULL FROM team_members
 WHERE active AND staff_id IS NOT NULL AND org_path = ANY($2) AND role = ANY($4)
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

"""Directory copy: upserts from committees events, last writer by `occurred_at` (events may arrive out of order)."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.contracts import committees as c
from shared.events import Event
from shared.inbox import Handler

GROUP = "visits.directory"


async def on_org_unit(conn: asyncpg.Connection, event: Event[c.OrgUnitFacts]) -> None:
    """Keep the org unit's place in the tree."""
    p = event.payload
    await conn.execute(
        "INSERT INTO org_units (org_unit_id, parent_id, level, org_path, name, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_unit_id) DO UPDATE SET parent_id = EXCLUDED.parent_id, "
        "level = EXCLUDED.level, org_path = EXCLUDED.org_path, name = EXCLUDED.name, "
        "occurred_at = EXCLUDED.occurred_at "
        "WHERE org_units.occurred_at <= EXCLUDED.occurred_at",
        p.org_unit_id,
        p.parent_id,
        p.level.value,
        p.org_path,
        p.name,
        p.occurred_at,
    )


async def on_staff(conn: asyncpg.Connection, event: Event[c.StaffFacts]) -> None:
    """Keep a staff member's school, roles and classes (registered or changed)."""
    p = event.payload
    await conn.execute(
        "INSERT INTO staff (staff_id, org_path, roles, class_ids, head_class_id, active, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, true, $6) ON CONFLICT (staff_id) DO UPDATE SET org_path = EXCLUDED.org_path, "
        "roles = EXCLUDED.roles, class_ids = EXCLUDED.class_ids, head_class_id = EXCLUDED.head_class_id, "
        "active = true, occurred_at = EXCLUDED.occurred_at WHERE staff.occurred_at <= EXCLUDED.occurred_at",
        p.staff_id,
        p.org_path,
        [r.value for r in p.roles],
        p.class_ids,
        p.head_class_id,
        p.occurred_at,
    )


async def on_staff_left(conn: asyncpg.Connection, event: Event[c.StaffLeft]) -> None:
    """Mark a staff member as gone (kept: their assignments and visits refer to them)."""
    p = event.payload
    await conn.execute(
        "INSERT INTO staff (staff_id, org_path, roles, active, occurred_at) VALUES ($1, $2, '{}', false, $3) "
        "ON CONFLICT (staff_id) DO UPDATE SET active = false, occurred_at = EXCLUDED.occurred_at "
        "WHERE staff.occurred_at <= EXCLUDED.occurred_at",
        p.staff_id,
        p.org_path,
        p.occurred_at,
    )


async def on_student(conn: asyncpg.Connection, event: Event[c.StudentFacts]) -> None:
    """Keep a student's class, its org path and the family (registered or changed)."""
    p = event.payload
    await conn.execute(
        "INSERT INTO students (student_id, class_id, org_path, family_id, active, occurred_at) "
        "VALUES ($1, $2, $3, $4, true, $5) ON CONFLICT (student_id) DO UPDATE SET class_id = EXCLUDED.class_id, "
        "org_path = EXCLUDED.org_path, family_id = EXCLUDED.family_id, active = true, "
        "occurred_at = EXCLUDED.occurred_at WHERE students.occurred_at <= EXCLUDED.occurred_at",
        p.student_id,
        p.class_id,
        p.org_path,
        p.family_id,
        p.occurred_at,
    )


async def on_student_left(conn: asyncpg.Connection, event: Event[c.StudentLeft]) -> None:
    """Mark a student as gone (an unknown student is remembered as gone, in case its registration comes late)."""
    p = event.payload
    await conn.execute(
        "INSERT INTO students (student_id, class_id, org_path, family_id, active, occurred_at) "
        "VALUES ($1, '', $2, '', false, $3) ON CONFLICT (student_id) DO UPDATE SET active = false, "
        "occurred_at = EXCLUDED.occurred_at WHERE students.occurred_at <= EXCLUDED.occurred_at",
        p.student_id,
        p.org_path,
        p.occurred_at,
    )


async def on_family(conn: asyncpg.Connection, event: Event[c.FamilyFacts]) -> None:
    """Keep the family's children and guardians (children's placement comes from student events)."""
    p = event.payload
    await conn.execute(
        "INSERT INTO families (family_id, student_ids, guardian_ids, occurred_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (family_id) DO UPDATE SET student_ids = EXCLUDED.student_ids, "
        "guardian_ids = EXCLUDED.guardian_ids, occurred_at = EXCLUDED.occurred_at "
        "WHERE families.occurred_at <= EXCLUDED.occurred_at",
        p.family_id,
        p.student_ids,
        p.guardian_ids,
        p.occurred_at,
    )


HANDLERS: dict[str, Handler] = {
    "committees.org_unit.registered.v1": on_org_unit,
    "committees.org_unit.changed.v1": on_org_unit,
    "committees.staff.registered.v1": on_staff,
    "committees.staff.changed.v1": on_staff,
    "committees.staff.left.v1": on_staff_left,
    "committees.student.registered.v1": on_student,
    "committees.student.changed.v1": on_student,
    "committees.student.left.v1": on_student_left,
    "committees.family.registered.v1": on_family,
    "committees.family.changed.v1": on_family,
}

CONSUMED_TOPICS: list[Any] = [c.ORG, c.STAFF, c.STUDENT, c.FAMILY]

"""Cooperation routes: parent committees, parent schools, instructor teams, lecturers and lectures."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from services.committees.api.common import MAX_LIMIT, after, page, require_write, rule_problem, unit_or_404
from services.committees.domain.rules import (
    TEACHERS,
    RuleBroken,
    attendance_rate,
    check_member_eligible,
    check_one_active_committee,
    check_term,
    committee_level,
)
from services.committees.schemas import (
    AttendanceIn,
    CommitteeIn,
    CommitteeOut,
    DissolveIn,
    EnrolIn,
    LectureIn,
    LecturerIn,
    LecturerOut,
    LecturerPage,
    MemberIn,
    ParentSchoolIn,
    SessionIn,
    TeamFormed,
    TeamIn,
    TeamMemberAdded,
    TeamMemberIn,
    TeamOut,
)
from services.committees.store import cooperation as store
from services.committees.store import directory
from shared import audit, idempotency, scope
from shared.auth import ADMINS, CurrentPrincipal, Principal, Role
from shared.contracts import committees as ev
from shared.contracts.common import OrgLevel
from shared.events import occurred_at
from shared.outbox import add_event, add_events
from shared.problems import Problem, conflict, invalid, not_found
from shared.web import Pool

router = APIRouter(prefix="/api/v1", tags=["cooperation"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
READERS = (*ADMINS, *TEACHERS, Role.AUDITOR)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _read(principal: Principal, org_path: str) -> None:
    """Cooperation records are not personal: readers see those inside their subtree."""
    principal.require(*READERS)
    scope.require(principal, org_path)


async def _list_path(pool: asyncpg.Pool, principal: Principal, under: str | None) -> str:
    principal.require(*READERS)
    path = principal.org_path if under is None else (await unit_or_404(pool, under))["org_path"]
    scope.require(principal, path)
    return path


# --- parent committees ---------------------------------------------------------------------------------------


@router.post("/committees", status_code=201)
async def form_committee(body: CommitteeIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Form the parent committee of a county, school, grade or class (one active committee per unit)."""
    unit = await unit_or_404(pool, body.org_unit_id)
    require_write(principal, unit["org_path"])
    try:
        level = committee_level(unit["level"])
    except RuleBroken as exc:
        raise rule_problem(exc) from None

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await conn.execute("SELECT 1 FROM org_units WHERE org_unit_id = $1 FOR UPDATE", body.org_unit_id)
        try:
            check_one_active_committee(await store.active_committees(conn, body.org_unit_id))
        except RuleBroken as exc:
            raise conflict(exc.reason) from None
        c = {
            "committee_id": _new_id("cm"),
            "org_unit_id": body.org_unit_id,
            "org_path": unit["org_path"],
            "level": level.value,
            "formed_on": body.formed_on,
        }
        await store.insert_committee(conn, c)
        await add_event(conn, ev.CommitteeFormed(**c, occurred_at=occurred_at()))
        return {**c, "dissolved_on": None, "members": []}

    return await idempotency.write(request, principal, pool, work)


@router.get("/committees")
async def list_committees(
    principal: CurrentPrincipal, pool: Pool, under: str | None = None, limit: Limit = 100, cursor: str | None = None
) -> dict[str, Any]:
    """Committees in a subtree (active and dissolved)."""
    path = await _list_path(pool, principal, under)
    return page(await store.list_committees(pool, path, after(cursor), limit + 1), limit, "committee_id")


async def _committee(pool: asyncpg.Connection | asyncpg.Pool, committee_id: str) -> dict[str, Any]:
    c = await store.committee(pool, committee_id)
    if c is None:
        raise not_found("committee")
    return c


@router.get("/committees/{committee_id}", response_model=CommitteeOut, response_model_exclude_unset=True)
async def get_committee(committee_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A committee and its active members (members' names only for admins in scope); the read is audited."""
    async with pool.acquire() as conn, conn.transaction():
        c = await _committee(conn, committee_id)
        _read(principal, c["org_path"])
        c["members"] = await store.members(conn, committee_id, with_names=principal.has(*ADMINS))
        await audit.record(
            conn,
            principal,
            resource_type="committee",
            resource_id=committee_id,
            org_path=c["org_path"],
            subject_ids=[m["guardian_id"] for m in c["members"]],
        )
    return c


@router.post("/committees/{committee_id}/dissolve")
async def dissolve_committee(
    committee_id: str, body: DissolveIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Dissolve a committee; its active members leave."""
    c = await _committee(pool, committee_id)
    require_write(principal, c["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        cur = await conn.fetchrow(
            "SELECT dissolved_on FROM committees WHERE committee_id = $1 FOR UPDATE", committee_id
        )
        if cur["dissolved_on"] is not None:
            raise conflict("the committee is already dissolved")
        if body.dissolved_on < c["formed_on"]:
            raise invalid("/dissolved_on", "must not be before formed_on")
        left = await store.dissolve(conn, committee_id, body.dissolved_on)
        now = occurred_at()
        await add_events(
            conn,
            [
                *(
                    ev.CommitteeMemberLeft(
                        committee_id=committee_id, guardian_id=g, org_path=c["org_path"], occurred_at=now
                    )
                    for g in left
                ),
                ev.CommitteeDissolved(
                    committee_id=committee_id,
                    org_unit_id=c["org_unit_id"],
                    org_path=c["org_path"],
                    dissolved_on=body.dissolved_on,
                    occurred_at=now,
                ),
            ],
        )
        return {**c, "dissolved_on": body.dissolved_on, "members_left": left}

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.post("/committees/{committee_id}/members", status_code=201)
async def add_member(
    committee_id: str, body: MemberIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """A guardian of a student inside the committee's unit joins it."""
    c = await _committee(pool, committee_id)
    require_write(principal, c["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        cur = await conn.fetchrow(
            "SELECT dissolved_on FROM committees WHERE committee_id = $1 FOR UPDATE", committee_id
        )
        if cur["dissolved_on"] is not None:
            raise conflict("the committee is dissolved")
        if await directory.guardian(conn, body.guardian_id) is None:
            raise invalid("/guardian_id", "unknown guardian")
        try:
            check_term(body.term_start, body.term_end)
            check_member_eligible(c["org_path"], await directory.guardian_student_paths(conn, body.guardian_id))
        except RuleBroken as exc:
            raise rule_problem(exc) from None
        m = body.model_dump()
        if not await store.upsert_member(conn, committee_id, m):
            raise conflict("the guardian is already a member")
        await add_event(
            conn,
            ev.CommitteeMemberJoined(committee_id=committee_id, org_path=c["org_path"], **m, occurred_at=occurred_at()),
        )
        return {"committee_id": committee_id, **m}

    return await idempotency.write(request, principal, pool, work)


@router.delete("/committees/{committee_id}/members/{guardian_id}")
async def remove_member(
    committee_id: str, guardian_id: str, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """A member leaves the committee."""
    c = await _committee(pool, committee_id)
    require_write(principal, c["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if not await store.remove_member(conn, committee_id, guardian_id):
            raise not_found("active member")
        await add_event(
            conn,
            ev.CommitteeMemberLeft(
                committee_id=committee_id, guardian_id=guardian_id, org_path=c["org_path"], occurred_at=occurred_at()
            ),
        )
        return {"committee_id": committee_id, "guardian_id": guardian_id, "active": False}

    return await idempotency.write(request, principal, pool, work, status_code=200)


# --- parent schools ------------------------------------------------------------------------------------------

KIND_LEVELS = {
    ev.ParentSchoolKind.COUNTY: {OrgLevel.DISTRICT},
    ev.ParentSchoolKind.SCHOOL: {OrgLevel.SCHOOL},
    ev.ParentSchoolKind.ONLINE: {OrgLevel.CITY, OrgLevel.DISTRICT, OrgLevel.SCHOOL},
}


@router.post("/parent-schools", status_code=201)
async def establish_parent_school(
    body: ParentSchoolIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Establish a county-level, school-level or online parent school."""
    unit = await unit_or_404(pool, body.org_unit_id)
    require_write(principal, unit["org_path"])
    if unit["level"] not in KIND_LEVELS[body.kind]:
        raise invalid("/org_unit_id", f"a {body.kind} parent school cannot belong to a {unit['level']}")

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        p = {"parent_school_id": _new_id("ps"), "org_path": unit["org_path"], **body.model_dump(mode="json")}
        await store.insert_parent_school(conn, p)
        await add_event(
            conn,
            ev.ParentSchoolEstablished(
                parent_school_id=p["parent_school_id"],
                org_path=p["org_path"],
                kind=body.kind,
                occurred_at=occurred_at(),
            ),
        )
        return p

    return await idempotency.write(request, principal, pool, work)


@router.get("/parent-schools")
async def list_parent_schools(
    principal: CurrentPrincipal, pool: Pool, under: str | None = None, limit: Limit = 100, cursor: str | None = None
) -> dict[str, Any]:
    """Parent schools in a subtree."""
    path = await _list_path(pool, principal, under)
    return page(await store.list_parent_schools(pool, path, after(cursor), limit + 1), limit, "parent_school_id")


async def _parent_school(pool: asyncpg.Pool, parent_school_id: str) -> dict[str, Any]:
    p = await store.parent_school(pool, parent_school_id)
    if p is None:
        raise not_found("parent school")
    return p


@router.get("/parent-schools/{parent_school_id}")
async def get_parent_school(parent_school_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A parent school and its sessions."""
    p = await _parent_school(pool, parent_school_id)
    _read(principal, p["org_path"])
    p["sessions"] = await store.sessions(pool, parent_school_id)
    return p


@router.post("/parent-schools/{parent_school_id}/sessions", status_code=201)
async def schedule_session(
    parent_school_id: str, body: SessionIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Schedule a session (topic, date, mode, speaker)."""
    p = await _parent_school(pool, parent_school_id)
    require_write(principal, p["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        s = {"session_id": _new_id("ss"), "parent_school_id": parent_school_id, **body.model_dump()}
        await store.insert_session(conn, s)
        await add_event(
            conn,
            ev.SessionScheduled(
                parent_school_id=parent_school_id,
                session_id=s["session_id"],
                org_path=p["org_path"],
                topic=body.topic,
                held_on=body.held_on,
                mode=body.mode,
                occurred_at=occurred_at(),
            ),
        )
        return {**s, "status": "scheduled"}

    return await idempotency.write(request, principal, pool, work)


async def _session(pool: asyncpg.Pool, parent_school_id: str, session_id: str) -> dict[str, Any]:
    s = await store.session(pool, parent_school_id, session_id)
    if s is None:
        raise not_found("session")
    return s


def _session_view(s: dict[str, Any]) -> dict[str, Any]:
    return {**s, "attendance_rate": attendance_rate(s["attended"], s["expected"])}


@router.get("/parent-schools/{parent_school_id}/sessions/{session_id}")
async def get_session(
    parent_school_id: str, session_id: str, principal: CurrentPrincipal, pool: Pool
) -> dict[str, Any]:
    """A session with enrolment, attendance and its attendance rate."""
    p = await _parent_school(pool, parent_school_id)
    _read(principal, p["org_path"])
    return _session_view(await _session(pool, parent_school_id, session_id))


async def _eligible(conn: asyncpg.Connection, p: dict[str, Any], guardian_ids: list[str], pointer: str) -> None:
    """Every guardian must have a student inside the parent school's unit."""
    ok = await store.guardians_in(conn, guardian_ids, p["org_path"])
    bad = [i for i, g in enumerate(guardian_ids) if g not in ok]
    if bad:
        raise Problem(
            422,
            "Rule broken",
            "guardians must have a student inside the parent school's org unit",
            errors=[{"pointer": pointer.format(i), "detail": "no student inside the unit"} for i in bad[:50]],
        )


@router.post("/parent-schools/{parent_school_id}/sessions/{session_id}/enrolments")
async def enrol(
    parent_school_id: str, session_id: str, body: EnrolIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Enrol guardians in a session (the expected attendance)."""
    p = await _parent_school(pool, parent_school_id)
    require_write(principal, p["org_path"])
    await _session(pool, parent_school_id, session_id)

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await _eligible(conn, p, body.guardian_ids, "/guardian_ids/{}")
        added = await store.enrol(conn, session_id, sorted(set(body.guardian_ids)))
        return {"session_id": session_id, "added": added}

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.post("/parent-schools/{parent_school_id}/sessions/{session_id}/held")
async def session_held(
    parent_school_id: str, session_id: str, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Record that a scheduled session took place."""
    p = await _parent_school(pool, parent_school_id)
    require_write(principal, p["org_path"])
    s = await _session(pool, parent_school_id, session_id)

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if not await store.mark_held(conn, session_id):
            raise conflict("the session was already recorded as held")
        await add_event(
            conn,
            ev.SessionHeld(
                parent_school_id=parent_school_id,
                session_id=session_id,
                org_path=p["org_path"],
                held_on=s["held_on"],
                enrolled=s["enrolled"],
                occurred_at=occurred_at(),
            ),
        )
        return _session_view({**s, "status": "held"})

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.post("/parent-schools/{parent_school_id}/sessions/{session_id}/attendance")
async def record_attendance(
    parent_school_id: str,
    session_id: str,
    body: AttendanceIn,
    request: Request,
    principal: CurrentPrincipal,
    pool: Pool,
) -> Any:
    """Record attendance per guardian (the latest record counts; unchanged records publish nothing)."""
    p = await _parent_school(pool, parent_school_id)
    require_write(principal, p["org_path"])
    await _session(pool, parent_school_id, session_id)
    latest = {r.guardian_id: r.attended for r in body.records}

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await _eligible(conn, p, [r.guardian_id for r in body.records], "/records/{}/guardian_id")
        changed = await store.record_attendance(conn, session_id, sorted(latest.items()))
        now = occurred_at()
        await add_events(
            conn,
            [
                ev.AttendanceRecorded(
                    parent_school_id=parent_school_id,
                    session_id=session_id,
                    guardian_id=g,
                    org_path=p["org_path"],
                    attended=latest[g],
                    occurred_at=now,
                )
                for g in sorted(changed)
            ],
        )
        s = await store.session(conn, parent_school_id, session_id)
        assert s is not None
        return {**_session_view(s), "changed": len(changed)}

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.get("/guardians/{guardian_id}/attendance")
async def guardian_attendance(guardian_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A guardian's attendance rate over the held sessions they were expected at."""
    principal.require(*READERS)
    paths = await directory.guardian_student_paths(pool, guardian_id)
    if not paths and await directory.guardian(pool, guardian_id) is None:
        raise not_found("guardian")
    if not any(scope.covers(principal, p) for p in paths):
        raise scope.forbidden()
    n = await store.guardian_attendance(pool, guardian_id)
    return {"guardian_id": guardian_id, **n, "attendance_rate": attendance_rate(n["attended"], n["expected"])}


# --- instructor teams ------------------------------------------------------------------------------------------

STAFF_TEAM_ROLES = {
    ev.TeamRole.VICE_PRINCIPAL_IN_CHARGE,
    ev.TeamRole.CLASS_TEACHER,
    ev.TeamRole.MENTAL_HEALTH_TEACHER,
    ev.TeamRole.IDEOLOGICAL_POLITICAL_TEACHER,
}


@router.post("/instructor-teams", status_code=201, response_model=TeamFormed)
async def form_team(body: TeamIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Form an instructor team for a school or county."""
    unit = await unit_or_404(pool, body.org_unit_id)
    require_write(principal, unit["org_path"])
    if unit["level"] not in (OrgLevel.SCHOOL, OrgLevel.DISTRICT):
        raise invalid("/org_unit_id", "instructor teams belong to a school or a county")

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        t = {"team_id": _new_id("tm"), "org_unit_id": body.org_unit_id, "org_path": unit["org_path"], "name": body.name}
        await store.insert_team(conn, t)
        await add_event(
            conn, ev.InstructorTeamFormed(team_id=t["team_id"], org_path=t["org_path"], occurred_at=occurred_at())
        )
        return t

    return await idempotency.write(request, principal, pool, work)


@router.get("/instructor-teams")
async def list_teams(
    principal: CurrentPrincipal, pool: Pool, under: str | None = None, limit: Limit = 100, cursor: str | None = None
) -> dict[str, Any]:
    """Instructor teams in a subtree."""
    path = await _list_path(pool, principal, under)
    return page(await store.list_teams(pool, path, after(cursor), limit + 1), limit, "team_id")


@router.get("/instructor-teams/{team_id}", response_model=TeamOut)
async def get_team(team_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A team with its active members (names of members who are not staff); the read is audited."""
    async with pool.acquire() as conn, conn.transaction():
        t = await store.team(conn, team_id)
        if t is None:
            raise not_found("instructor team")
        _read(principal, t["org_path"])
        await audit.record(
            conn,
            principal,
            resource_type="instructor_team",
            resource_id=team_id,
            org_path=t["org_path"],
            subject_ids=[m["staff_id"] or m["member_id"] for m in t["members"]],
        )
    return t


@router.post("/instructor-teams/{team_id}/members", status_code=201, response_model=TeamMemberAdded)
async def add_team_member(
    team_id: str, body: TeamMemberIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Add a member: school staff by staff_id (inside the team's unit), experts and parents by name."""
    t = await store.team(pool, team_id)
    if t is None:
        raise not_found("instructor team")
    require_write(principal, t["org_path"])
    if body.role in STAFF_TEAM_ROLES and not body.staff_id:
        raise invalid("/staff_id", f"a {body.role} member must be school staff")
    if body.staff_id is None and not body.name:
        raise invalid("/name", "a member who is not staff needs a name")

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if body.staff_id:
            s = await directory.staff(conn, body.staff_id)
            if s is None or not s["active"]:
                raise invalid("/staff_id", "unknown or departed staff member")
            if not scope.within(s["org_path"], t["org_path"]):
                raise invalid("/staff_id", "the staff member works outside the team's org unit")
        m = {"member_id": _new_id("tmm"), "team_id": team_id, **body.model_dump(mode="json")}
        try:
            async with conn.transaction():
                await store.insert_team_member(conn, m)
        except asyncpg.UniqueViolationError as exc:
            what = "the team already has a lead" if "lead" in str(exc) else "the staff member is already in the team"
            raise conflict(what) from None
        await add_event(
            conn,
            ev.InstructorTeamMemberAdded(
                team_id=team_id,
                member_id=m["member_id"],
                staff_id=body.staff_id,
                org_path=t["org_path"],
                role=body.role,
                is_lead=body.is_lead,
                occurred_at=occurred_at(),
            ),
        )
        await audited(conn, m)
        return m

    async def audited(conn: asyncpg.Connection, m: dict[str, Any]) -> None:
        await audit.record(
            conn,
            principal,
            action="write",
            resource_type="instructor_team",
            resource_id=team_id,
            org_path=t["org_path"],
            subject_ids=[m["staff_id"] or m["member_id"]],
        )

    return await idempotency.write(request, principal, pool, work, replayed=audited)


@router.delete("/instructor-teams/{team_id}/members/{member_id}")
async def remove_team_member(
    team_id: str, member_id: str, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Remove a member from a team."""
    t = await store.team(pool, team_id)
    if t is None:
        raise not_found("instructor team")
    require_write(principal, t["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if not await store.remove_team_member(conn, team_id, member_id):
            raise not_found("active team member")
        await add_event(
            conn,
            ev.InstructorTeamMemberRemoved(
                team_id=team_id, member_id=member_id, org_path=t["org_path"], occurred_at=occurred_at()
            ),
        )
        return {"team_id": team_id, "member_id": member_id, "active": False}

    return await idempotency.write(request, principal, pool, work, status_code=200)


# --- lecturer group and publicity lectures -----------------------------------------------------------------------


@router.post("/lecturers", status_code=201, response_model=LecturerOut)
async def add_lecturer(body: LecturerIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Add a member of the lecturer group (staff or, by name, an outside lecturer)."""
    unit = await unit_or_404(pool, body.org_unit_id)
    require_write(principal, unit["org_path"])
    if body.staff_id is None and not body.name:
        raise invalid("/name", "a lecturer who is not staff needs a name")

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if body.staff_id and await directory.staff(conn, body.staff_id) is None:
            raise invalid("/staff_id", "unknown staff member")
        lec = {"lecturer_id": _new_id("lr"), "org_path": unit["org_path"], **body.model_dump()}
        await store.insert_lecturer(conn, lec)
        await audited(conn, lec)
        return lec

    async def audited(conn: asyncpg.Connection, lec: dict[str, Any]) -> None:
        await audit.record(
            conn,
            principal,
            action="write",
            resource_type="lecturer",
            resource_id=lec["lecturer_id"],
            org_path=lec["org_path"],
            subject_ids=[lec["staff_id"] or lec["lecturer_id"]],
        )

    return await idempotency.write(request, principal, pool, work, replayed=audited)


@router.get("/lecturers", response_model=LecturerPage)
async def list_lecturers(
    principal: CurrentPrincipal, pool: Pool, under: str | None = None, limit: Limit = 100, cursor: str | None = None
) -> dict[str, Any]:
    """The lecturer group in a subtree (names of outside lecturers); the read is audited."""
    path = await _list_path(pool, principal, under)
    async with pool.acquire() as conn, conn.transaction():
        out = page(await store.list_lecturers(conn, path, after(cursor), limit + 1), limit, "lecturer_id")
        await audit.record(
            conn,
            principal,
            action="list",
            resource_type="lecturer",
            org_path=path,
            subject_ids=[x["staff_id"] or x["lecturer_id"] for x in out["items"]],
            subject_paths={x["staff_id"] or x["lecturer_id"]: x["org_path"] for x in out["items"]},
        )
    return out


@router.post("/lectures", status_code=201)
async def record_lecture(body: LectureIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Record a publicity lecture given to audience org units (`lecture.given`)."""
    lecturer = await store.lecturer(pool, body.lecturer_id)
    if lecturer is None:
        raise invalid("/lecturer_id", "unknown lecturer")
    require_write(principal, lecturer["org_path"])
    paths = await store.unit_paths(pool, body.audience_org_unit_ids)
    missing = [i for i, u in enumerate(body.audience_org_unit_ids) if u not in paths]
    if missing:
        raise Problem(
            422,
            "Invalid request",
            "unknown audience org units",
            errors=[{"pointer": f"/audience_org_unit_ids/{i}", "detail": "unknown org unit"} for i in missing],
        )

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        audience = sorted({paths[u] for u in body.audience_org_unit_ids})
        lec = {
            "lecture_id": _new_id("lc"),
            "lecturer_id": body.lecturer_id,
            "org_path": lecturer["org_path"],
            "topic": body.topic.value,
            "title": body.title,
            "given_on": body.given_on,
            "audience_org_paths": audience,
            "headcount": body.headcount,
        }
        await store.insert_lecture(conn, lec)
        await add_event(
            conn,
            ev.LectureGiven(
                lecture_id=lec["lecture_id"],
                lecturer_id=body.lecturer_id,
                org_path=lecturer["org_path"],
                topic=body.topic,
                given_on=body.given_on,
                audience_org_paths=audience,
                headcount=body.headcount,
                occurred_at=occurred_at(),
            ),
        )
        return lec

    return await idempotency.write(request, principal, pool, work)


@router.get("/lectures")
async def list_lectures(
    principal: CurrentPrincipal, pool: Pool, under: str | None = None, limit: Limit = 100, cursor: str | None = None
) -> dict[str, Any]:
    """Lectures given by lecturers in a subtree."""
    path = await _list_path(pool, principal, under)
    return page(await store.list_lectures(pool, path, after(cursor), limit + 1), limit, "lecture_id")

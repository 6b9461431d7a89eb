"""Event handlers: findings open or join care cases (see reaction.py); the kit's directory copy, and what its changes
mean for the left-behind group."""

from __future__ import annotations

import uuid

import asyncpg
from pydantic import BaseModel

from services.outreach.reaction import FINDING_TYPE, Reaction
from services.outreach.settings import Rules
from services.outreach.store import directory as store_directory
from services.outreach.store import groups
from shared import directory
from shared.clock import Clock
from shared.contracts import committees as dir_ev
from shared.contracts.outreach import GroupMembershipRegistered, GroupSource, SpecialGroup
from shared.contracts.visits import FindingRecorded
from shared.directory import Changes, DirectoryCopy
from shared.inbox import Batch
from shared.outbox import add_events

FINDINGS_GROUP = "outreach.findings"
DIRECTORY_GROUP = "outreach.directory"


def new_id() -> str:
    return str(uuid.uuid4())


class LeftBehindFlag:
    """What outreach does with directory changes: a family whose parents work away puts its children in the
    left-behind group (placed once their class is known), parents back home end what the flag alone held, and a
    child's memberships follow the child's moves."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def __call__(self, conn: asyncpg.Connection, changes: Changes) -> None:
        now = self.clock.now()
        students = changes.of(directory.STUDENTS, active=True)
        families = changes.of(directory.FAMILIES, active=True)
        if students:
            await groups.follow_moves(conn, [(r["student_id"], r["org_path"]) for r in students])
        home = [sid for f in families if not f["parents_work_away"] for sid in f["student_ids"]]
        if home:
            await groups.end_directory_flag(conn, home, SpecialGroup.LEFT_BEHIND, now)
        flagged = await store_directory.left_behind_children(
            conn, [r["student_id"] for r in students], [f["family_id"] for f in families if f["parents_work_away"]]
        )
        if not flagged:
            return
        rows = [(new_id(), sid, path) for sid, path in flagged]
        created = await groups.register_many(conn, rows, SpecialGroup.LEFT_BEHIND, GroupSource.DIRECTORY_FLAG, now)
        await add_events(
            conn,
            [
                GroupMembershipRegistered(
                    membership_id=m["membership_id"],
                    student_id=m["student_id"],
                    group=SpecialGroup(m["group"]),
                    source=GroupSource(m["source"]),
                    org_path=m["org_path"],
                    occurred_at=now,
                )
                for m in created
            ],
        )


def family_and_children(p: BaseModel) -> list[str]:
    """The entities a directory event's flag decision reads across topics (see `Locked`).

    A student event reads its family's flag and a family event reads its students' rows: both lock the family, or
    in parallel lanes (or replicas) neither sees the other's row and the child is never flagged. Both also lock the
    children, as findings do: every writer of a child's memberships holds its lock, so a move and a finding's
    membership serialize, and their row locks on memberships cannot deadlock.
    """
    if isinstance(p, dir_ev.FamilyFacts):
        return [f"family:{p.family_id}", *(f"student:{s}" for s in p.student_ids)]
    if isinstance(p, dir_ev.StudentFacts):
        return [f"family:{p.family_id}", f"student:{p.student_id}"]
    return []


def student_of(p: FindingRecorded) -> list[str]:
    """A finding places the child's membership in the class the directory copy knows."""
    return [f"student:{p.student_id}"]


def consumers(rules: Rules, clock: Clock) -> dict[str, Batch]:
    """The consumer groups, both set-based (a lane's poll at a time): findings, and the directory copy."""
    return {
        FINDINGS_GROUP: Batch(frozenset({FINDING_TYPE}), Reaction(rules, clock).on_findings, keys=student_of),
        DIRECTORY_GROUP: DirectoryCopy(LeftBehindFlag(clock), keys=family_and_children).subscription(),
    }

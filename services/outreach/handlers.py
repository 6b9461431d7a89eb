"""Event handlers: findings open or join care cases (usecases/findings.py); the kit's directory copy, whose changes
move the left-behind group (usecases/groups.py) and hand a leaver's cases over (usecases/leavers.py)."""

from __future__ import annotations

import asyncpg

from services.outreach.settings import Rules
from services.outreach.usecases import groups, leavers
from services.outreach.usecases.findings import Reaction
from services.outreach.usecases.merges import Merges
from shared.clock import Clock
from shared.contracts import committees as dir_ev
from shared.contracts.visits import FindingRecorded
from shared.directory import FAMILIES, STAFF, STUDENTS, Changes, DirectoryCopy
from shared.events import Fact, type_of
from shared.inbox import Batch, Subscription

FINDINGS_GROUP = "outreach.findings"
DIRECTORY_GROUP = "outreach.directory"


class DirectoryChanges:
    """The directory copy's change hook: what its changes mean for the left-behind group, and the open cases of
    staff members who left."""

    def __init__(self, rules: Rules, clock: Clock) -> None:
        self.rules, self.clock = rules, clock

    async def __call__(self, conn: asyncpg.Connection, changes: Changes) -> None:
        now = self.clock.now()
        await groups.follow_directory(conn, changes, now)
        await leavers.hand_over(conn, self.rules, [r["staff_id"] for r in changes.of(STAFF, active=False)], now)


FAMILY_FACTS = frozenset({type_of(dir_ev.FamilyRegistered), type_of(dir_ev.FamilyChanged)})
STUDENT_FACTS = frozenset({type_of(dir_ev.StudentRegistered), type_of(dir_ev.StudentChanged)})


def family_and_children(fact: Fact) -> list[str]:
    """The entities a directory event's flag decision reads across topics (see `Locked`).

    A student event reads its family's flag and a family event reads its students' rows: both lock the family, or
    in parallel lanes (or replicas) neither sees the other's row and the child is never flagged. Both also lock the
    children, as findings do: every writer of a child's memberships holds its lock, so a move and a finding's
    membership serialize, and their row locks on memberships cannot deadlock.
    """
    p = fact.data
    if fact.type in FAMILY_FACTS:
        return [f"family:{p['family_id']}", *(f"student:{s}" for s in p["student_ids"])]
    if fact.type in STUDENT_FACTS:
        return [f"family:{p['family_id']}", f"student:{p['student_id']}"]
    return []


def student_of(p: FindingRecorded) -> list[str]:
    """A finding places the child's membership in the class the directory copy knows."""
    return [f"student:{p.student_id}"]


def consumers(rules: Rules, clock: Clock) -> dict[str, Subscription]:
    """The consumer groups, both set-based (a lane's poll at a time): findings, and the directory copy, which also
    follows merges, once each, in its poll's transaction. Outreach reads none of its own events back: the notices
    of its facts are written with them (`usecases.notifications.publish`)."""
    merges = Batch(frozenset({type_of(dir_ev.StudentMerged)}), Merges(clock).apply, keys=both_children)
    return {
        FINDINGS_GROUP: Batch(
            frozenset({type_of(FindingRecorded)}), Reaction(rules, clock).on_findings, keys=student_of
        ),
        DIRECTORY_GROUP: DirectoryCopy(
            DirectoryChanges(rules, clock), keys=family_and_children, reads=[STUDENTS, FAMILIES, STAFF], then=merges
        ).subscription(),
    }


def both_children(p: dir_ev.StudentMerged) -> list[str]:
    """A merge moves the duplicate's cases and groups to the survivor: both children are locked, as findings and
    the directory copy lock them."""
    return [f"student:{p.student_id}", f"student:{p.merged_into}"]

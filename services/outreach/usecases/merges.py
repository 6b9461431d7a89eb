"""A duplicate child merged into another (committees' `student.merged`): one child, one open case, its groups."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.outreach.domain.merges import MERGED, OpenCase, merge_cases
from services.outreach.store import cases as case_store
from services.outreach.store import merges as store
from services.outreach.usecases import notifications
from services.outreach.usecases.cases import case_facts
from shared.clock import Clock
from shared.contracts.committees import StudentMerged
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import (
    CarerAssignment,
    CaseAssigned,
    CaseClosed,
    GroupMembershipRegistered,
    GroupSource,
    SpecialGroup,
)
from shared.events import Event


def _open(row: asyncpg.Record | None) -> OpenCase | None:
    if row is None:
        return None
    return OpenCase(row["case_id"], Severity(row["risk_level"]), tuple(Category(c) for c in row["categories"]))


class Merges:
    """The handler of `student.merged` (a batch of them, one after the other in the batch's transaction)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def apply(self, conn: asyncpg.Connection, events: list[Event[StudentMerged]]) -> None:
        await notifications.publish(conn, [(e.trace, await self.merge(conn, e.payload)) for e in events])

    async def merge(self, conn: asyncpg.Connection, p: StudentMerged) -> list[Any]:
        """Fold or move the duplicate's open case (domain.merge_cases), move its ids and groups; the events."""
        dup, keep, now = p.student_id, p.merged_into, self.clock.now()
        cases = await store.list_open_cases(conn, [dup, keep])
        plan = merge_cases(_open(cases.get(keep)), _open(cases.get(dup)))
        events: list[Any] = []
        if plan.action == "fold":
            d, k = cases[dup], cases[keep]
            assert plan.risk_level is not None
            survivor, joined = await store.update_case_folded(
                conn, d["case_id"], k["case_id"], plan.risk_level, list(plan.categories)
            )
            closing = {"closed_at": now, "reason_code": MERGED, "note": None, "closed_by": "merge",
                       "closed_by_role": "system"}  # fmt: skip
            await case_store.update_case_closed(conn, d["case_id"], "closed", closing)
            events.append(
                CaseClosed(**case_facts(d, now, overdue=False), reason_code=MERGED, approved_by_role="system")
            )
            # What changed for the surviving case: its risk and categories now take in the duplicate's, and the
            # duplicate's carers who were not its carers joined it (told of their new case like any assignment).
            carers = [CarerAssignment(staff_id=c["staff_id"], role=c["role"], org_path=c["org_path"]) for c in joined]
            events.append(CaseAssigned(**case_facts(survivor, now), carers=carers))
        await store.update_student_id(conn, dup, keep)
        for m in await store.update_memberships(conn, dup, keep):
            events.append(
                GroupMembershipRegistered(
                    membership_id=m["membership_id"],
                    student_id=keep,
                    group=SpecialGroup(m["grp"]),
                    source=GroupSource(m["source"]),
                    org_path=m["org_path"],
                    occurred_at=now,
                )
            )
        return events

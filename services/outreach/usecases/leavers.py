"""A staff member who leaves hands their open cases over: each role they held on a case goes to whoever the
assignment rules choose now (`domain.replacement_carers`), in the directory batch that brought the leaving."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import asyncpg

from services.outreach import domain
from services.outreach.settings import Rules
from services.outreach.store import cases, directory
from services.outreach.usecases import notifications
from services.outreach.usecases.cases import case_facts
from shared.contracts.common import StaffRole
from shared.contracts.outreach import CarerAssignment, CaseAssigned


async def hand_over(conn: asyncpg.Connection, rules: Rules, leavers: list[str], now: datetime) -> int:
    """Reassign the open cases of staff members who left; one CaseAssigned per case (its carers now). The number
    of cases handed over. A redelivered leaving finds nothing left to hand over."""
    if not leavers:
        return 0
    open_cases = await cases.list_open_cases_of_staff(conn, sorted(set(leavers)))
    if not open_cases:
        return 0
    ids = [c["case_id"] for c in open_cases]
    carers: dict[str, list[domain.Carer]] = defaultdict(list)
    for r in await cases.list_carers_of_cases(conn, ids):
        carers[r["case_id"]].append(domain.Carer(r["staff_id"], StaffRole(r["role"]), r["org_path"]))
    query = domain.candidate_query(rules, (c["org_path"] for c in open_cases))
    pool = domain.CandidatePool(await directory.list_carer_candidates(conn, query))
    gone = set(leavers)
    rows: list[tuple[str, str, str, str]] = []
    events = []
    for c in open_cases:
        kept = [x for x in carers[c["case_id"]] if x.staff_id not in gone]
        lost = [x.role for x in carers[c["case_id"]] if x.staff_id in gone]
        new = domain.replacement_carers(rules, lost, kept, c["org_path"], pool)
        rows += [(c["case_id"], x.staff_id, str(x.role), x.org_path) for x in new]
        events.append(
            CaseAssigned(
                **case_facts(c, now),
                carers=[CarerAssignment(staff_id=x.staff_id, role=x.role, org_path=x.org_path) for x in kept + new],
            )
        )
    await cases.delete_case_carers(conn, ids, sorted(gone))
    await cases.insert_case_carers(conn, rows, now)
    await notifications.publish(conn, [(None, events)])
    return len(open_cases)

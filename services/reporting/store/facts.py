"""Merging fact operations into the fact tables with order-independent rules (one row or thousands)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import asyncpg

from services.reporting.domain.projection import BOOKKEEPING, OP_COLUMNS, SEP, Op


@dataclass(frozen=True)
class OpSql:
    """How one operation's rows merge: table, key columns, the row types and the upsert statement."""

    table: str
    key: tuple[str, ...]
    types: tuple[str, ...]
    insert: str  # INSERT ... SELECT ... FROM unnest(...) ON CONFLICT ...
    staged: str  # the same statement reading round $1 of its staging table (the bulk path: _merge_staged)
    stage: str  # the staging table's DDL
    # Figures recomputed per dirty leaf (store/refresh.py PER_LEAF_PARTS) come from this table and the org_path of a
    # row can change: mark the old path dirty too. (The other tables' changes are logged by a trigger.)
    movable: bool = False
    # Leaves of other facts whose per-leaf figures depend on these rows (their keys are $1).
    dependents: tuple[str, ...] = ()


def _unnest(types: tuple[str, ...], cols: tuple[str, ...]) -> str:
    args = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    return f"unnest({args}) AS u({', '.join(cols)})"


def _staged(name: str, cols: tuple[str, ...]) -> str:
    return f"(SELECT {', '.join(cols)} FROM stage_{name} WHERE rnd = $1) AS u"


def _op(
    name: str,
    table: str,
    key: tuple[str, ...],
    types: tuple[str, ...],
    body: str,
    movable: bool = False,
    dependents: tuple[str, ...] = (),
) -> OpSql:
    cols = OP_COLUMNS[name]
    assert len(cols) == len(types), name
    stage = (
        f"CREATE TEMP TABLE IF NOT EXISTS stage_{name}"
        f" ({', '.join(f'{c} {t}' for c, t in zip(cols, types, strict=True))}, rnd int) ON COMMIT DELETE ROWS"
    )
    insert, staged = body.replace("{src}", _unnest(types, cols)), body.replace("{src}", _staged(name, cols))
    return OpSql(table, key, types, insert, staged, stage, movable, dependents)


def _latest(alias: str, newer: str, *columns: str) -> str:
    """`column = CASE WHEN <newer> THEN excluded.column ELSE <alias>.column END` for each column: the values of the
    latest event win, whatever the order of arrival (`newer` compares the incoming row with the stored one)."""
    return ", ".join(f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE {alias}.{c} END" for c in columns)


def _replaced(name: str, key: tuple[str, ...], later: str) -> str:
    """The conflict clause of a fact the latest event replaces whole: every column of `name`'s rows but the `key`
    takes the incoming value when `later` holds (`later` compares the incoming row, `excluded`, with the stored one)."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in OP_COLUMNS[name] if c not in key)
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets} WHERE {later}"


T, TS, D, INT, B = "text", "timestamptz", "date", "int", "boolean"
_RANKED_LATER = "(excluded.state_at, excluded.rank) >= (c.state_at, c.rank)"  # a committee's later state wins
# A membership's later event wins; at the same instant, leaving wins over joining.
_LEAVING_LATER = "(excluded.occurred_at, NOT excluded.active) >= ({a}.occurred_at, NOT {a}.active)"
# A visit's or an assignment's later event wins; at the same instant, the higher rank (completed over missed, removed
# over reassigned over made).
_RANK_LATER = "(excluded.occurred_at, excluded.rank) >= ({a}.occurred_at, {a}.rank)"
# A guardian's later attendance record wins; at the same instant, attended over absent.
_ATTENDED_LATER = "(excluded.occurred_at, excluded.attended) >= (a.occurred_at, a.attended)"
# A referral's later state wins; at the same instant, the one further along.
_STATE_LATER = "(excluded.state_at, excluded.state_rank) >= (r.state_at, r.state_rank)"

OPS: dict[str, OpSql] = {
    "org_unit": _op(
        "org_unit",
        "org_units",
        ("org_unit_id",),
        (T, T, T, T, TS),
        f"""INSERT INTO org_units AS o (org_unit_id, org_path, level, name, occurred_at) SELECT * FROM {{src}}
        {_replaced("org_unit", ("org_unit_id",), "excluded.occurred_at >= o.occurred_at")}""",
    ),
    "campaign": _op(
        "campaign",
        "campaigns",
        ("campaign_id",),
        (T, T, T, D, D, INT, T, TS, TS),
        f"""INSERT INTO campaigns AS c (campaign_id, name, org_path, starts_on, ends_on, target_per_teacher,
            checklist_item_ids, occurred_at, closed_at)
        SELECT campaign_id, name, org_path, starts_on, ends_on, target_per_teacher,
            string_to_array(checklist_items, E'{SEP}'), occurred_at, closed_at FROM {{src}}
        ON CONFLICT (campaign_id) DO UPDATE SET
            name = coalesce(excluded.name, c.name),
            org_path = CASE WHEN excluded.occurred_at IS NOT NULL THEN excluded.org_path ELSE c.org_path END,
            starts_on = coalesce(excluded.starts_on, c.starts_on), ends_on = coalesce(excluded.ends_on, c.ends_on),
            target_per_teacher = coalesce(excluded.target_per_teacher, c.target_per_teacher),
            checklist_item_ids = coalesce(excluded.checklist_item_ids, c.checklist_item_ids),
            occurred_at = coalesce(excluded.occurred_at, c.occurred_at),
            closed_at = GREATEST(c.closed_at, excluded.closed_at)""",
    ),
    "assignment": _op(
        "assignment",
        "assignments",
        ("assignment_id",),
        (T, T, T, T, T, B, TS, INT),
        f"""INSERT INTO assignments AS a (assignment_id, campaign_id, teacher_id, family_id, org_path, active,
            occurred_at, rank) SELECT * FROM {{src}}
        {_replaced("assignment", ("assignment_id",), _RANK_LATER.format(a="a"))}""",
    ),
    "visit": _op(
        "visit",
        "visits",
        ("visit_id",),
        (T, T, T, T, T, T, T, T, D, T, T, T, T, TS, INT),
        f"""INSERT INTO visits AS v (visit_id, campaign_id, assignment_id, teacher_id, family_id, org_path, status,
            mode, visited_on, yes_items, no_items, flag_items, guidance_topics, occurred_at, rank)
        SELECT visit_id, campaign_id, assignment_id, teacher_id, family_id, org_path, status, mode, visited_on,
            coalesce(string_to_array(nullif(yes_items, ''), E'{SEP}'), '{{}}'),
            coalesce(string_to_array(nullif(no_items, ''), E'{SEP}'), '{{}}'),
            coalesce(string_to_array(nullif(flag_items, ''), E'{SEP}'), '{{}}'),
            coalesce(string_to_array(nullif(guidance_topics, ''), E'{SEP}'), '{{}}'),
            occurred_at, rank FROM {{src}}
        {_replaced("visit", ("visit_id",), _RANK_LATER.format(a="v"))}""",
    ),
    "finding": _op(
        "finding",
        "findings",
        ("finding_id",),
        (T, T, T, T, T, T, T, D, TS),
        """INSERT INTO findings (finding_id, student_id, visit_id, campaign_id, category, severity, org_path,
            visited_on, recorded_at) SELECT * FROM {src} ON CONFLICT (finding_id) DO NOTHING""",
        # A case counts in its finding's campaign, and so do the case's referrals.
        dependents=(
            "SELECT org_path FROM cases WHERE finding_id = ANY($1::text[])",
            "SELECT r.org_path FROM referrals r JOIN cases c USING (case_id) WHERE c.finding_id = ANY($1::text[])",
        ),
    ),
    "membership": _op(
        "membership",
        "memberships",
        ("membership_id",),
        (T, T, T, T, TS, B, TS, TS, TS),
        f"""INSERT INTO memberships AS m (membership_id, student_id, grp, org_path, path_at, verified, verified_at,
            registered_at, ended_at)
        SELECT * FROM {{src}}
        ON CONFLICT (membership_id) DO UPDATE SET
            {_latest("m", "excluded.path_at > m.path_at", "student_id", "grp", "org_path")},
            path_at = GREATEST(m.path_at, excluded.path_at),
            verified = CASE WHEN excluded.verified_at IS NOT NULL
                AND (m.verified_at IS NULL OR (excluded.verified_at, excluded.verified) > (m.verified_at, m.verified))
                THEN excluded.verified ELSE m.verified END,
            verified_at = GREATEST(m.verified_at, excluded.verified_at),
            registered_at = GREATEST(m.registered_at, excluded.registered_at),
            ended_at = GREATEST(m.ended_at, excluded.ended_at)""",
        movable=True,
    ),
    "case": _op(
        "case",
        "cases",
        ("case_id",),
        (T, T, T, TS, T, TS, TS, TS, TS, TS, T, TS, B, TS),
        f"""INSERT INTO cases AS c (case_id, student_id, org_path, path_at, finding_id, finding_recorded_at, opened_at,
            first_contact_due, due_at, first_contact_at, state, state_at, closed_at, overdue, overdue_at)
        SELECT case_id, student_id, org_path, path_at, finding_id, finding_recorded_at, opened_at,
            first_contact_due, due_at, first_contact_at, coalesce(state, 'open'),
            CASE WHEN state IS NULL THEN '-infinity'::timestamptz ELSE state_at END,
            CASE WHEN state = 'closed' THEN state_at END, overdue, overdue_at
        FROM {{src}}
        ON CONFLICT (case_id) DO UPDATE SET
            {_latest("c", "excluded.path_at > c.path_at", "student_id", "org_path")},
            path_at = GREATEST(c.path_at, excluded.path_at),
            finding_id = coalesce(c.finding_id, excluded.finding_id),
            finding_recorded_at = coalesce(c.finding_recorded_at, excluded.finding_recorded_at),
            opened_at = LEAST(c.opened_at, excluded.opened_at),
            first_contact_due = CASE WHEN excluded.due_at IS NOT NULL AND (c.due_at IS NULL
                OR (excluded.due_at, excluded.first_contact_due) > (c.due_at, c.first_contact_due))
                THEN excluded.first_contact_due ELSE c.first_contact_due END,
            due_at = GREATEST(c.due_at, excluded.due_at),
            first_contact_at = LEAST(c.first_contact_at, excluded.first_contact_at),
            {_latest("c", "(excluded.state_at, excluded.state) > (c.state_at, c.state)", "state")},
            state_at = GREATEST(c.state_at, excluded.state_at),
            closed_at = GREATEST(c.closed_at, excluded.closed_at),
            -- the latest event that states it wins (ties: overdue), whatever the order of arrival
            overdue = CASE WHEN excluded.overdue_at IS NOT NULL AND (c.overdue_at IS NULL
                OR (excluded.overdue_at, excluded.overdue) > (c.overdue_at, c.overdue))
                THEN excluded.overdue ELSE c.overdue END,
            overdue_at = GREATEST(c.overdue_at, excluded.overdue_at)""",
        movable=True,
        # A referral counts in its case's campaign, which comes with the case's finding.
        dependents=("SELECT org_path FROM referrals WHERE case_id = ANY($1::text[])",),
    ),
    "case_closure": _op(
        "case_closure",
        "case_closures",
        ("case_id",),
        (T, TS, TS),
        """INSERT INTO case_closures AS c (case_id, proposed_at, settled_at) SELECT * FROM {src}
        ON CONFLICT (case_id) DO UPDATE SET proposed_at = GREATEST(c.proposed_at, excluded.proposed_at),
            settled_at = GREATEST(c.settled_at, excluded.settled_at)""",
        # A closure is pending at its case's leaf.
        dependents=("SELECT org_path FROM cases WHERE case_id = ANY($1::text[])",),
    ),
    "referral": _op(
        "referral",
        "referrals",
        ("referral_id",),
        (T, T, T, T, T, T, INT, TS),
        f"""INSERT INTO referrals AS r (referral_id, case_id, department, category, org_path, state, state_rank,
            state_at) SELECT * FROM {{src}}
        {_replaced("referral", ("referral_id",), _STATE_LATER)}""",
        movable=True,
    ),
    "committee": _op(
        "committee",
        "committees",
        ("committee_id",),
        (T, T, T, T, B, TS, INT),
        f"""INSERT INTO committees AS c (committee_id, org_unit_id, org_path, level, active, state_at, rank)
        SELECT * FROM {{src}}
        ON CONFLICT (committee_id) DO UPDATE SET level = coalesce(excluded.level, c.level),
            {_latest("c", _RANKED_LATER, "org_unit_id", "org_path", "active", "rank")},
            state_at = GREATEST(c.state_at, excluded.state_at)""",
        movable=True,
    ),
    "session": _op(
        "session",
        "sessions",
        ("session_id",),
        (T, T, T, D, INT, TS),
        f"""INSERT INTO sessions AS s (session_id, parent_school_id, org_path, held_on, enrolled, occurred_at)
        SELECT * FROM {{src}}
        {_replaced("session", ("session_id",), "excluded.occurred_at >= s.occurred_at")}""",
    ),
    "attendance": _op(
        "attendance",
        "attendance",
        ("session_id", "guardian_id"),
        (T, T, T, B, TS, B),
        f"""INSERT INTO attendance AS a (session_id, guardian_id, org_path, attended, occurred_at, online)
        SELECT * FROM {{src}}
        {_replaced("attendance", ("session_id", "guardian_id"), _ATTENDED_LATER)}""",
    ),
    "team": _op(
        "team",
        "teams",
        ("team_id",),
        (T, T, TS),
        f"""INSERT INTO teams AS t (team_id, org_path, occurred_at) SELECT * FROM {{src}}
        {_replaced("team", ("team_id",), "excluded.occurred_at >= t.occurred_at")}""",
    ),
    "team_member": _op(
        "team_member",
        "team_members",
        ("team_id", "member_id"),
        (T, T, T, T, B, TS),
        f"""INSERT INTO team_members AS m (team_id, member_id, org_path, role, active, occurred_at)
        SELECT * FROM {{src}}
        ON CONFLICT (team_id, member_id) DO UPDATE SET role = coalesce(excluded.role, m.role),
            {_latest("m", _LEAVING_LATER.format(a="m"), "org_path", "active")},
            occurred_at = GREATEST(m.occurred_at, excluded.occurred_at)""",
    ),
    "lecture": _op(
        "lecture",
        "lectures",
        ("lecture_id",),
        (T, T, T, INT, D, T, INT),
        """INSERT INTO lectures (lecture_id, org_path, topic, headcount, given_on, lecturer_id, audience_units)
        SELECT * FROM {src} ON CONFLICT (lecture_id) DO NOTHING""",
    ),
    "lecturer": _op(
        "lecturer",
        "lecturers",
        ("lecturer_id",),
        (T, T, B, TS),
        f"""INSERT INTO lecturers AS l (lecturer_id, org_path, active, occurred_at) SELECT * FROM {{src}}
        ON CONFLICT (lecturer_id) DO UPDATE SET {_latest("l", _LEAVING_LATER.format(a="l"), "active")},
            occurred_at = GREATEST(l.occurred_at, excluded.occurred_at)""",
    ),
    "dirty_leaf": _op(
        "dirty_leaf",
        "dirty_leaves",
        ("path",),
        (T,),
        "INSERT INTO dirty_leaves (path) SELECT DISTINCT * FROM {src}",
    ),
}

# Apply order: facts first, then the bookkeeping (dirty marks, appended without keys).
ORDER = [name for name in OPS if name not in BOOKKEEPING] + sorted(BOOKKEEPING)


def _rounds(op: OpSql, rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Split rows so that no statement touches a key twice (ON CONFLICT cannot update a row twice), in key order."""
    if len(op.key) == len(OP_COLUMNS_BY_TABLE[op.table]):  # bookkeeping: DISTINCT handles repeats
        return [rows]
    key = itemgetter(*[OP_COLUMNS_BY_TABLE[op.table].index(k) for k in op.key])  # a value, or a tuple of them
    seen: dict[Any, int] = defaultdict(int)
    rounds: list[list[tuple[Any, ...]]] = []
    for row in rows:
        k = key(row)
        n = seen[k]
        seen[k] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    # Key order: two lanes merging overlapping rows take their row locks in the same order (no deadlock).
    return [sorted(r, key=key) for r in rounds]


OP_COLUMNS_BY_TABLE = {op.table: OP_COLUMNS[name] for name, op in OPS.items()}


async def upsert_facts(conn: asyncpg.Connection, ops: list[Op], *, track: bool = True) -> None:
    """Merge operations into the facts; with `track`, also mark old and new paths for the incremental refresh and
    log the changes (the triggers of migrations/012); without, the caller refreshes in full afterwards (in the same
    transaction: the setting lasts until it ends)."""
    grouped: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for name, row in ops:
        if track or name not in BOOKKEEPING:
            grouped[name].append(row)
    if not track:
        await _merge_staged(conn, grouped)
        return
    for name in ORDER:
        rows = grouped.get(name)
        if not rows:
            continue
        op = OPS[name]
        for batch in _rounds(op, rows):
            marks = [*op.dependents]
            if op.movable:  # a fact moving to another path leaves its old leaf stale: mark it before the merge
                marks.append(f"SELECT org_path FROM {op.table} WHERE {op.key[0]} = ANY($1::text[])")
            if marks:
                await conn.execute(
                    f"INSERT INTO dirty_leaves (path) SELECT DISTINCT org_path FROM ({' UNION ALL '.join(marks)}) m",
                    [r[0] for r in batch],
                )
            await conn.execute(op.insert, *[list(col) for col in zip(*batch, strict=True)])


async def _merge_staged(conn: asyncpg.Connection, grouped: dict[str, list[tuple[Any, ...]]]) -> None:
    """The bulk path: each operation's rows go to its staging table by binary COPY (a round number with each row),
    then the same upsert per round reads them there. Sent as arrays, asyncpg checked every element in Python (~6 µs
    of client CPU per attendance row, against ~2.5 by COPY). The staging tables empty at commit, so this must run in
    the caller's transaction."""
    if not conn.is_in_transaction():
        raise RuntimeError("a bulk merge runs inside a transaction (its staging tables empty at commit)")
    names = [name for name in ORDER if grouped.get(name)]
    await conn.execute(
        ";".join(["SELECT set_config('reporting.untracked', 'on', true)", *(OPS[n].stage for n in names)])
    )
    for name in names:
        op = OPS[name]
        rounds = _rounds(op, grouped[name])
        records = [(*row, n) for n, batch in enumerate(rounds) for row in batch]
        await conn.copy_records_to_table(f"stage_{name}", records=records)
        for n in range(len(rounds)):
            await conn.execute(op.staged, n)

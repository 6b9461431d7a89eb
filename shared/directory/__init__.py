"""The directory copy a consuming service keeps of committees' directory: its tables and set-based batch upserts.

One copy for every consumer (visits, outreach): org units, staff, students, families and instructor-team members,
fed by committees' events through one `Facts` subscription. Each row carries its source's version (`occurred_at`
of the event that wrote it) and the newest version wins, whatever order events arrive in: a late older event
changes nothing, and so does a redelivered or replayed one: it is not even written, so the copy keeps no inbox
rows (the subscription is `shared.inbox.Facts`: a poll in one transaction, events validated against their contracts
into plain dicts, no models). Leavers and removed team members stay as tombstones
(`active` false) so a late registration cannot bring them back. A poll's events are folded per entity in Python
and written with two statements per table (facts, then leavers), so the cost per event is a share of a statement.
A service reacting to what changed (outreach's left-behind flag) passes `on_change`, which gets the rows that
took effect, in the same transaction.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel

from shared.contracts import committees as c
from shared.events import Fact, type_of
from shared.inbox import Batch, Facts

MIGRATIONS = Path(__file__).parent / "migrations"
TOPICS = [c.ORG, c.STAFF, c.STUDENT, c.FAMILY, c.TEAM]
"""The committees topics the copy is fed from (declared by consumers too, so they can subscribe first)."""


@dataclass(frozen=True, eq=False)
class Table:
    """One table of the copy: its key, the columns an event's facts fill and what a tombstone holds instead."""

    name: str
    key: tuple[str, ...]
    facts: dict[str, str]  # column -> SQL type, filled from a facts event's payload
    tombstone: dict[str, str] = field(default_factory=dict)  # column -> SQL value of a row first known as gone

    @functools.cached_property
    def facts_columns(self) -> tuple[str, ...]:
        """The payload fields a facts event's row is made of: its key, its facts and its version."""
        return (*self.key, *self.facts, "occurred_at")

    @functools.cached_property
    def gone_columns(self) -> tuple[str, ...]:
        """The payload fields a tombstone's row is made of: its key, what it takes from the event, its version."""
        return (*self.key, *(col for col, v in self.tombstone.items() if v == ""), "occurred_at")

    def _source(self, columns: Iterable[str], types: dict[str, str]) -> str:
        spec = ", ".join(f"{col} {types[col]}" for col in columns)
        return f"json_to_recordset($1::text::json) AS r({spec}, occurred_at timestamptz)"

    def upsert_facts(self, returning: bool = True) -> str:
        """Write the facts of each row whose stored version is older, or as new with other facts (two writes in
        one instant: the later delivered wins); the rows written (when `returning`). A row that already holds the
        event's version and facts is not written at all: a redelivery or replay changes nothing, not even the
        tuple, and tells `on_change` nothing."""
        cols = [*self.key, *self.facts]
        types = {k: "text" for k in self.key} | self.facts
        updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in self.facts)
        return (
            f"INSERT INTO {self.name} AS t ({', '.join(cols)}, active, occurred_at)"
            f" SELECT {', '.join(cols)}, true, occurred_at FROM {self._source(cols, types)}"
            f" ORDER BY {', '.join(self.key)}"
            f" ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}, active = true,"
            f" occurred_at = EXCLUDED.occurred_at WHERE t.occurred_at < EXCLUDED.occurred_at"
            f" OR (t.occurred_at = EXCLUDED.occurred_at AND (t.active, {', '.join(f't.{c}' for c in self.facts)})"
            f" IS DISTINCT FROM (true, {', '.join(f'EXCLUDED.{c}' for c in self.facts)}))"
            + (f" RETURNING {', '.join(cols)}, true AS active" if returning else "")
        )

    def upsert_gone(self, returning: bool = True) -> str:
        """Mark rows gone (keeping their last facts) whose stored version is older, or as new and still live; the
        rows written (when `returning`). A row already gone at the event's version is not written (as facts)."""
        passed = [*self.key, *(col for col in self.tombstone if self.tombstone[col] == "")]
        types = {k: "text" for k in self.key} | self.facts
        values = [*self.key, *(v or col for col, v in self.tombstone.items())]
        return (
            f"INSERT INTO {self.name} AS t ({', '.join([*self.key, *self.tombstone])}, active, occurred_at)"
            f" SELECT {', '.join(values)}, false, occurred_at FROM {self._source(passed, types)}"
            f" ORDER BY {', '.join(self.key)}"
            f" ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET active = false, occurred_at = EXCLUDED.occurred_at"
            f" WHERE t.occurred_at < EXCLUDED.occurred_at OR (t.occurred_at = EXCLUDED.occurred_at AND t.active)"
            + (f" RETURNING {', '.join([*self.key, *self.facts])}, false AS active" if returning else "")
        )


# A tombstone value "" means: taken from the leaving event's payload (its org path); anything else is SQL.
ORG_UNITS = Table(
    "org_units", ("org_unit_id",), {"parent_id": "text", "level": "text", "org_path": "text", "name": "text"}
)
STAFF = Table(
    "staff",
    ("staff_id",),
    {"org_path": "text", "roles": "text[]", "class_ids": "text[]", "head_class_id": "text"},
    {"org_path": "", "roles": "'{}'::text[]"},
)
STUDENTS = Table(
    "students",
    ("student_id",),
    {"class_id": "text", "org_path": "text", "family_id": "text"},
    {"class_id": "''", "org_path": "", "family_id": "''"},
)
FAMILIES = Table(
    "families",
    ("family_id",),
    {"student_ids": "text[]", "guardian_ids": "text[]", "parents_work_away": "boolean", "living_arrangement": "text"},
)
TEAM_MEMBERS = Table(
    "team_members",
    ("team_id", "member_id"),
    {"staff_id": "text", "org_path": "text", "role": "text"},
    {"org_path": "", "role": "''"},
)
TABLES = [ORG_UNITS, STAFF, STUDENTS, FAMILIES, TEAM_MEMBERS]

# Which table each contract class writes, and whether it carries facts (True) or says the entity is gone (False).
WRITERS: dict[type[BaseModel], tuple[Table, bool]] = {
    c.OrgUnitRegistered: (ORG_UNITS, True),
    c.OrgUnitChanged: (ORG_UNITS, True),
    c.StaffRegistered: (STAFF, True),
    c.StaffChanged: (STAFF, True),
    c.StaffLeft: (STAFF, False),
    c.StudentRegistered: (STUDENTS, True),
    c.StudentChanged: (STUDENTS, True),
    c.StudentLeft: (STUDENTS, False),
    c.StudentMerged: (STUDENTS, False),  # the duplicate is gone like a leaver; services follow `merged_into` apart
    c.FamilyRegistered: (FAMILIES, True),
    c.FamilyChanged: (FAMILIES, True),
    c.InstructorTeamMemberAdded: (TEAM_MEMBERS, True),
    c.InstructorTeamMemberRemoved: (TEAM_MEMBERS, False),
}
WRITES = {type_of(model): writes for model, writes in WRITERS.items()}  # the same, by event type
TYPES = frozenset(WRITES)


@dataclass
class Changes:
    """The rows a batch wrote (its newest facts, or tombstones), per table name, as the upserts returned them."""

    rows: dict[str, list[asyncpg.Record]] = field(default_factory=dict)
    reads: frozenset[str] = frozenset(t.name for t in TABLES)  # the tables whose rows were asked for

    def of(self, table: Table, *, active: bool | None = None) -> list[asyncpg.Record]:
        """Rows written to `table` (only live ones, or only tombstones, when `active` says so)."""
        if table.name not in self.reads:
            raise ValueError(f"the directory copy was not asked for the changes of {table.name} (see `reads`)")
        return [r for r in self.rows.get(table.name, []) if active is None or r["active"] is active]


OnChange = Callable[[asyncpg.Connection, Changes], Awaitable[None]]


def _picker(model: type[BaseModel], columns: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What a row of `columns` is made of from a payload of `model`: the payload itself when its fields are exactly
    those columns (most facts events: no copy per event), else the columns picked from it."""
    if set(model.model_fields) == set(columns):
        return lambda fields: fields
    return lambda fields: {col: fields[col] for col in columns}


# Per event type: its table, whether it carries facts, its entity's key in the payload, and its row from the payload.
_FOLD: dict[str, tuple[Table, bool, Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    type_of(model): (
        table,
        is_facts,
        operator.itemgetter(*table.key),
        _picker(model, table.facts_columns if is_facts else table.gone_columns),
    )
    for model, (table, is_facts) in WRITERS.items()
}


def fold(events: Iterable[Fact]) -> dict[Table, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Per table, the facts rows and the tombstone rows that applying `events` one by one would leave written.

    Applied one at a time, an event takes effect when its version is not older than every version seen before it
    for its entity; the batch's result is then the last facts event that took effect, followed by the last leaving
    event if one took effect after it. Writing those two (each guarded by the stored version) gives the same rows
    as any split of the stream into batches. (Per entity, a list [version, facts row, tombstone row]: this runs once
    per consumed event, a fifth of a copy's CPU per event with a dataclass and a row copy each.)
    """
    newest: dict[Table, dict[Any, list[Any]]] = {}
    for event_type, fields in events:
        table, is_facts, key_of, row_of = _FOLD[event_type]
        at: datetime = fields["occurred_at"]
        entities = newest.get(table)
        if entities is None:
            entities = newest[table] = {}
        key = key_of(fields)
        entity = entities.get(key)
        if entity is None:
            entities[key] = [at, row_of(fields), None] if is_facts else [at, None, row_of(fields)]
        elif at >= entity[0]:  # an older version than the batch already has for the entity changes nothing
            entity[0] = at
            if is_facts:
                entity[1], entity[2] = row_of(fields), None
            else:
                entity[2] = row_of(fields)
    return {
        table: ([e[1] for e in rows.values() if e[1] is not None], [e[2] for e in rows.values() if e[2] is not None])
        for table, rows in newest.items()
    }


class DirectoryCopy:
    """The consumer side of the directory: `subscription()` is what a service registers for its directory group.

    `on_change` runs in the batch's transaction after the upserts, with the rows that took effect. `keys` names the
    entities a batch's transaction locks (see `shared.inbox.Locked`): a service whose `on_change` reads rows that
    another topic's events write (a student's family, a family's students) must lock them, so that the two never
    run unseen by each other in parallel lanes or replicas. `reads` names the tables whose changes `on_change` reads
    (all by default): the others are written without returning their rows, which costs the consumer a decoded row
    per event. `then` follows some directory events beyond the copy, once each, in the batch's transaction (the
    services' merges: see `shared.inbox.Facts.then`), so the group reads every directory topic once.
    """

    def __init__(
        self,
        on_change: OnChange | None = None,
        keys: Callable[[Fact], Iterable[str]] | None = None,
        reads: Iterable[Table] | None = None,
        then: Batch | None = None,
    ) -> None:
        self.on_change = on_change
        self.keys = keys
        self.then = then
        wanted = [] if on_change is None else TABLES if reads is None else reads
        self.reads = frozenset(t.name for t in wanted)

    def subscription(self) -> Facts:
        """The directory group's subscription: every directory event type, applied a poll at a time, without inbox
        rows: the upserts write nothing for an event whose version and facts are already there, so a redelivered
        or replayed event changes nothing and reaches no `on_change` (tests/integration/test_kit_directory.py)."""
        return Facts(TYPES, self.apply, keys=self.keys, then=self.then)

    async def apply(self, conn: asyncpg.Connection, events: list[Fact]) -> None:
        """Write the newest facts and tombstones of a batch of directory events, then tell `on_change`."""
        changes = Changes(reads=self.reads)
        for table, (facts, gone) in fold(events).items():
            read = table.name in self.reads
            written: dict[tuple[str, ...], asyncpg.Record] = {}
            for sql, rows in ((table.upsert_facts(read), facts), (table.upsert_gone(read), gone)):
                if not rows:
                    continue
                values = orjson.dumps(rows).decode()  # (text, cast in SQL: the pool's json codec would encode it again)
                if not read:
                    await conn.execute(sql, values)
                    continue
                for r in await conn.fetch(sql, values):
                    written[tuple(r[k] for k in table.key)] = r  # a tombstone overrides its entity's facts
            if read:
                changes.rows[table.name] = list(written.values())
        if self.on_change is not None and changes.rows:
            await self.on_change(conn, changes)

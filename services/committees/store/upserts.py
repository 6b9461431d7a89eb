"""Set-based directory writes: staging tables, upserts that skip unchanged rows and write the events they publish.

Used by bulk imports and by single-record writes alike, so both publish exactly the same events. Each upsert
answers its counts and one row per event to publish (`registered`: registered or changed, `data`: the contract's
fields); the events go to the outbox through the kit (`shared.outbox.add_bulk`), in the same transaction, read from
the answer a few thousand rows at a time.
"""

from __future__ import annotations

import functools
import io
import re
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
from pydantic import BaseModel

from shared import db
from shared.contracts import committees as c
from shared.events import Built
from shared.outbox import add_bulk

# The contract classes of what each write publishes: (registered, changed).
EVENTS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "org_units": (c.OrgUnitRegistered, c.OrgUnitChanged),
    "staff": (c.StaffRegistered, c.StaffChanged),
    "students": (c.StudentRegistered, c.StudentChanged),
    "families": (c.FamilyRegistered, c.FamilyChanged),
}


def _published(source: str, data_expr: str, order: str = "") -> str:
    """The statement's answer: the counts of `up`, then one row per row of `source` to publish (at least one row,
    the counts, when there is nothing to publish)."""
    return f"""counts AS (
    SELECT count(*) FILTER (WHERE inserted) AS created, count(*) FILTER (WHERE NOT inserted) AS updated FROM up)
SELECT counts.created, counts.updated, e.inserted AS registered, e.data
FROM counts LEFT JOIN (SELECT inserted, {data_expr} AS data, row_number() OVER ({order}) AS n FROM {source}) e ON true
ORDER BY e.n"""


STAGE = {
    "org_units": "org_unit_id text, parent_id text, level text, org_path text, name text, school_type text",
    "staff": "staff_id text, name text, gender text, phone text, org_unit_id text, org_path text, roles text[], "
    "class_ids text[], head_class_id text",
    "families": "family_no text, parents_work_away boolean, living_arrangement text, address text",
    "guardians": "guardian_no text, family_no text, name text, relation text, phone text, is_primary boolean, "
    "works_away boolean",
    "students": "student_no text, name text, gender text, birth_date date, national_id text, class_id text, "
    "org_path text, family_no text",
}

ORG_UNITS = f"""
WITH up AS (
    INSERT INTO org_units (org_unit_id, parent_id, level, org_path, name, school_type)
    SELECT org_unit_id, parent_id, level, org_path, name, school_type FROM stage_org_units
    ON CONFLICT (org_unit_id) DO UPDATE SET name = EXCLUDED.name, school_type = EXCLUDED.school_type,
        updated_at = now()
    WHERE (org_units.name, org_units.school_type) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.school_type)
    RETURNING org_unit_id, parent_id, level, org_path, name, school_type, (xmax = 0) AS inserted),
{
    _published(
        "up",
        "jsonb_build_object('org_unit_id', org_unit_id, 'parent_id', parent_id, 'level', level, "
        "'org_path', org_path, 'name', name, 'school_type', school_type)",
        "ORDER BY length(org_path), org_unit_id",
    )
}"""

STAFF = f"""
WITH old AS (
    SELECT s.staff_id, s.org_path, s.roles, s.class_ids, s.head_class_id, s.active
    FROM staff s JOIN stage_staff t USING (staff_id)),
up AS (
    INSERT INTO staff (staff_id, name, gender, phone, org_unit_id, org_path, roles, class_ids, head_class_id)
    SELECT staff_id, name, gender, phone, org_unit_id, org_path, roles, class_ids, head_class_id FROM stage_staff
    ON CONFLICT (staff_id) DO UPDATE SET name = EXCLUDED.name, gender = EXCLUDED.gender, phone = EXCLUDED.phone,
        org_unit_id = EXCLUDED.org_unit_id, org_path = EXCLUDED.org_path, roles = EXCLUDED.roles,
        class_ids = EXCLUDED.class_ids, head_class_id = EXCLUDED.head_class_id, active = true, updated_at = now()
    WHERE (staff.name, staff.gender, staff.phone, staff.org_unit_id, staff.roles, staff.class_ids,
           staff.head_class_id, staff.active)
        IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.gender, EXCLUDED.phone, EXCLUDED.org_unit_id, EXCLUDED.roles,
           EXCLUDED.class_ids, EXCLUDED.head_class_id, true)
    RETURNING staff_id, org_path, roles, class_ids, head_class_id, (xmax = 0) AS inserted),
pub AS (
    SELECT up.* FROM up LEFT JOIN old USING (staff_id)
    WHERE up.inserted OR NOT old.active
       OR (old.org_path, old.roles, old.class_ids, old.head_class_id)
          IS DISTINCT FROM (up.org_path, up.roles, up.class_ids, up.head_class_id)),
{
    _published(
        "pub",
        "jsonb_build_object('staff_id', staff_id, 'org_path', org_path, 'roles', to_jsonb(roles), "
        "'class_ids', to_jsonb(class_ids), 'head_class_id', head_class_id)",
    )
}"""

FAMILIES = """
WITH up AS (
    INSERT INTO families (family_no, parents_work_away, living_arrangement, address)
    SELECT family_no, parents_work_away, living_arrangement, address FROM stage_families
    ON CONFLICT (family_no) DO UPDATE SET parents_work_away = EXCLUDED.parents_work_away,
        living_arrangement = EXCLUDED.living_arrangement, address = EXCLUDED.address, updated_at = now()
    WHERE (families.parents_work_away, families.living_arrangement, families.address)
        IS DISTINCT FROM (EXCLUDED.parents_work_away, EXCLUDED.living_arrangement, EXCLUDED.address)
    RETURNING family_id, (xmax = 0) AS inserted),
t AS (INSERT INTO touched_families SELECT family_id FROM up)
SELECT count(*) FILTER (WHERE inserted) AS created, count(*) FILTER (WHERE NOT inserted) AS updated,
       NULL::boolean AS registered, NULL::jsonb AS data
FROM up"""

GUARDIANS = """
WITH old AS (SELECT g.guardian_no, g.family_id FROM guardians g JOIN stage_guardians t USING (guardian_no)),
up AS (
    INSERT INTO guardians (guardian_no, family_id, name, relation, phone, is_primary, works_away)
    SELECT t.guardian_no, f.family_id, t.name, t.relation, t.phone, t.is_primary, t.works_away
    FROM stage_guardians t JOIN families f USING (family_no)
    ON CONFLICT (guardian_no) DO UPDATE SET family_id = EXCLUDED.family_id, name = EXCLUDED.name,
        relation = EXCLUDED.relation, phone = EXCLUDED.phone, is_primary = EXCLUDED.is_primary,
        works_away = EXCLUDED.works_away, updated_at = now()
    WHERE (guardians.family_id, guardians.name, guardians.relation, guardians.phone, guardians.is_primary,
           guardians.works_away)
        IS DISTINCT FROM (EXCLUDED.family_id, EXCLUDED.name, EXCLUDED.relation, EXCLUDED.phone,
           EXCLUDED.is_primary, EXCLUDED.works_away)
    RETURNING guardian_no, guardian_id, family_id, (xmax = 0) AS inserted),
t AS (
    INSERT INTO touched_families
    SELECT family_id FROM up WHERE inserted
    UNION SELECT old.family_id FROM up JOIN old USING (guardian_no) WHERE old.family_id <> up.family_id
    UNION SELECT up.family_id FROM up JOIN old USING (guardian_no) WHERE old.family_id <> up.family_id)
SELECT count(*) FILTER (WHERE inserted) AS created, count(*) FILTER (WHERE NOT inserted) AS updated,
       NULL::boolean AS registered, NULL::jsonb AS data
FROM up"""

STUDENTS = f"""
WITH old AS (
    SELECT s.student_no, s.class_id, s.org_path, s.family_id, s.active
    FROM students s JOIN stage_students t USING (student_no)),
up AS (
    INSERT INTO students (student_no, name, gender, birth_date, national_id, class_id, org_path, family_id)
    SELECT t.student_no, t.name, t.gender, t.birth_date, t.national_id, t.class_id, t.org_path, f.family_id
    FROM stage_students t JOIN families f USING (family_no)
    ON CONFLICT (student_no) DO UPDATE SET name = EXCLUDED.name, gender = EXCLUDED.gender,
        birth_date = EXCLUDED.birth_date, national_id = EXCLUDED.national_id, class_id = EXCLUDED.class_id,
        org_path = EXCLUDED.org_path, family_id = EXCLUDED.family_id, active = true, updated_at = now()
    WHERE (students.name, students.gender, students.birth_date, students.national_id, students.class_id,
           students.family_id, students.active)
        IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.gender, EXCLUDED.birth_date, EXCLUDED.national_id,
           EXCLUDED.class_id, EXCLUDED.family_id, true)
    RETURNING student_no, student_id, class_id, org_path, family_id, (xmax = 0) AS inserted),
pub AS (
    SELECT up.*, old.family_id AS old_family_id, old.active AS was_active FROM up LEFT JOIN old USING (student_no)
    WHERE up.inserted OR NOT old.active
       OR (old.class_id, old.org_path, old.family_id) IS DISTINCT FROM (up.class_id, up.org_path, up.family_id)),
t AS (
    INSERT INTO touched_families
    SELECT family_id FROM pub WHERE inserted OR NOT was_active OR old_family_id <> family_id
    UNION SELECT old_family_id FROM pub WHERE old_family_id <> family_id),
{
    _published(
        "pub",
        "jsonb_build_object('student_id', student_id, 'class_id', class_id, 'org_path', org_path, "
        "'family_id', family_id)",
    )
}"""

FAMILY_FACTS = f"""
WITH touched AS (SELECT DISTINCT family_id FROM touched_families),
st AS (
    SELECT s.family_id, jsonb_agg(s.student_id ORDER BY s.student_id) AS ids
    FROM students s JOIN touched USING (family_id) WHERE s.active GROUP BY s.family_id),
gu AS (
    SELECT g.family_id, jsonb_agg(g.guardian_id ORDER BY g.guardian_id) AS ids
    FROM guardians g JOIN touched USING (family_id) GROUP BY g.family_id),
facts AS (
    SELECT f.family_id,
           jsonb_build_object('family_id', f.family_id, 'student_ids', coalesce(st.ids, '[]'::jsonb),
               'guardian_ids', coalesce(gu.ids, '[]'::jsonb), 'parents_work_away', f.parents_work_away,
               'living_arrangement', f.living_arrangement) AS new
    FROM families f JOIN touched USING (family_id) LEFT JOIN st USING (family_id) LEFT JOIN gu USING (family_id)),
hashed AS (SELECT family_id, new, md5(new::text) AS hash FROM facts),
ch AS (
    INSERT INTO family_published (family_id, hash) SELECT family_id, hash FROM hashed
    ON CONFLICT (family_id) DO UPDATE SET hash = EXCLUDED.hash WHERE family_published.hash <> EXCLUDED.hash
    RETURNING family_id, (xmax = 0) AS inserted),
up AS (SELECT ch.family_id, ch.inserted, hashed.new FROM ch JOIN hashed USING (family_id)),
{_published("up", "new")}"""

STAGE_COLUMNS = {entity: [col.split()[0] for col in cols.split(", ")] for entity, cols in STAGE.items()}
ANALYZE_AFTER = 10_000
BULK_ROWS = 1_000
# A first load of at least this many rows into an empty guardians or students table builds the table's secondary
# indexes after inserting the rows (migration 009), in the import's transaction.
DEFER_INDEXES_ROWS = 10_000
DEFERRABLE = ("guardians", "students")
UPSERTS = {"org_units": ORG_UNITS, "staff": STAFF, "families": FAMILIES, "guardians": GUARDIANS, "students": STUDENTS}
KEYS = {
    "org_units": "org_unit_id",
    "staff": "staff_id",
    "families": "family_no",
    "guardians": "guardian_no",
    "students": "student_no",
}  # the bureau's key of each entity (its conflict target)


def _without_conflict(sql: str) -> str:
    """The upsert as a plain INSERT (its ON CONFLICT clause left out): the same answer when no staged key exists
    yet, without a speculative insertion per row (measured ~1.4x cheaper at 95 k guardians)."""
    plain, n = re.subn(r"\n\s*ON CONFLICT .*?(?=\n\s*RETURNING)", "", sql, flags=re.S)
    assert n == 1, "an upsert has exactly one ON CONFLICT clause"
    return plain


INSERTS = {entity: _without_conflict(sql) for entity, sql in UPSERTS.items()}
FIRST_FAMILY_FACTS = _without_conflict(FAMILY_FACTS)
PUBLISHED_EXISTING = "SELECT EXISTS (SELECT FROM touched_families JOIN family_published USING (family_id))"
# Whether any staged row's key is already in the table (else the upsert is a plain INSERT: a first import).
EXISTING = {
    entity: f"SELECT EXISTS (SELECT FROM stage_{entity} JOIN {entity} USING ({key}))" for entity, key in KEYS.items()
}


async def insert_stage_tables(conn: asyncpg.Connection) -> None:
    """Create this transaction's staging tables (dropped at commit)."""
    for entity, cols in STAGE.items():
        await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{entity} ({cols}) ON COMMIT DROP")
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS touched_families (family_id text) ON COMMIT DROP")


async def insert_touched_families(conn: asyncpg.Connection, family_ids: list[str]) -> None:
    """Families whose facts a write changed outside the upserts (`insert_family_events` compares and publishes)."""
    await conn.execute("INSERT INTO touched_families SELECT unnest($1::text[])", family_ids)


PUBLISH_ROWS = 5_000  # an upsert's answer is read and its events written this many rows at a time


class Staged(NamedTuple):
    """Validated rows already written as COPY data of the entity's staging table (`stage_data`) to a file."""

    path: Path
    rows: int


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[str, ...]:
    names = tuple(model.model_fields)
    assert names[-1] == "occurred_at", model
    return names


def built(model: type[BaseModel], data: dict[str, Any], at: datetime) -> Built:
    """The event an upsert's answer row publishes: its `data` (the contract's fields but `occurred_at`, as the
    statement's `jsonb_build_object` names them, decoded) with `occurred_at` = `at`, in the class's field order (a
    `Built` payload: written without a model, as the contract writes it; a unit test holds it to the contract)."""
    names = _fields(model)
    return Built(model, {**{name: data[name] for name in names[:-1]}, names[-1]: at})


async def _apply(
    conn: asyncpg.Connection,
    sql: str,
    events: tuple[type[BaseModel], type[BaseModel]] | None,
    at: datetime,
    timeout: float | None,
) -> tuple[int, int, int]:
    """Run an upsert and write the events it answers through the kit's outbox, `PUBLISH_ROWS` answer rows at a time
    (a cursor: a city's answer as Python objects would be hundreds of MB); (created, updated, events)."""
    cursor = await conn.cursor(sql, timeout=timeout)
    rows = await cursor.fetch(PUBLISH_ROWS, timeout=timeout)
    created, updated = rows[0]["created"], rows[0]["updated"]
    written = 0
    while rows:
        if events is not None:
            registered, changed = events
            written += await add_bulk(
                conn,
                (
                    built(registered if r["registered"] else changed, r["data"], at)
                    for r in rows
                    if r["registered"] is not None
                ),
            )
        rows = await cursor.fetch(PUBLISH_ROWS, timeout=timeout) if len(rows) == PUBLISH_ROWS else []
    return created, updated, written


def stage_data(entity: str, rows: list[dict[str, Any]]) -> bytes:
    """Validated rows as COPY data of the entity's staging table (pure: an import builds it where it validates)."""
    return db.copy_columns(db.columns(rows, *STAGE_COLUMNS[entity]))


async def upsert_entity(
    conn: asyncpg.Connection,
    entity: str,
    rows: list[dict[str, Any]] | Staged,
    at: datetime,
    timeout: float | None = None,
) -> tuple[int, int, int]:
    """Stage `rows` (already validated; or staged to a file) with COPY and apply them; (created, updated, events)."""
    n = rows.rows if isinstance(rows, Staged) else len(rows)
    if not n:
        return (0, 0, 0)
    source = rows.path if isinstance(rows, Staged) else io.BytesIO(stage_data(entity, rows))
    await conn.copy_to_table(
        f"stage_{entity}", source=source, columns=STAGE_COLUMNS[entity], format="text", timeout=timeout
    )
    await conn.execute(f"ANALYZE stage_{entity}", timeout=timeout)
    # a bulk write of rows none of which exist yet (a first import) inserts them without ON CONFLICT; should a
    # single-record write commit one of the same keys meanwhile, the unique index fails the import as a whole
    # (nothing applied, the job says failed, a re-run upserts) instead of overwriting that record
    plain = n >= BULK_ROWS and not await conn.fetchval(EXISTING[entity], timeout=timeout)
    deferred = (
        plain
        and n >= DEFER_INDEXES_ROWS
        and entity in DEFERRABLE
        and await conn.fetchval("SELECT defer_directory_indexes($1)", entity, timeout=timeout)
    )
    created, updated, events = await _apply(
        conn, (INSERTS if plain else UPSERTS)[entity], EVENTS.get(entity), at, timeout
    )
    if deferred:
        await conn.execute("SELECT restore_directory_indexes($1)", entity, timeout=timeout)
    await conn.execute(f"TRUNCATE stage_{entity}", timeout=timeout)
    if created + updated >= ANALYZE_AFTER:
        # a bulk load changes the table's size by orders of magnitude: later statements need fresh statistics
        await conn.execute("SELECT analyze_directory_table($1)", entity, timeout=timeout)
    return created, updated, events


async def insert_family_events(
    conn: asyncpg.Connection, at: datetime, timeout: float | None = None, *, bulk: bool = False
) -> int:
    """Publish registered/changed events for touched families whose facts differ from the last published (`bulk`:
    an import, whose families may all be new: then their hashes are inserted without ON CONFLICT)."""
    await conn.execute("ANALYZE touched_families", timeout=timeout)
    plain = bulk and not await conn.fetchval(PUBLISHED_EXISTING, timeout=timeout)
    *_, events = await _apply(conn, FIRST_FAMILY_FACTS if plain else FAMILY_FACTS, EVENTS["families"], at, timeout)
    await conn.execute("TRUNCATE touched_families", timeout=timeout)
    return events

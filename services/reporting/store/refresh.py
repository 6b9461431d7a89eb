"""Refresh of the materialised figures: fact changes → leaf_metrics → node_metrics rolled up to the city.

A refresh folds deltas (issue 16). The fact tables whose figures add up row by row log every change (a trigger
writes the row's old image with sg = -1 and its new image with sg = +1, migrations/012); a refresh takes the log
rows its snapshot sees, computes their figures with the same definitions as a full recompute (every row weighted
by sg) and adds them to the leaf figures and to each stored ancestor: its cost follows what changed since the last
refresh, not the number of dirty classes times their history. A leaf's distinct teachers or families move by one
when an entity's last fact row there goes or its first one comes: the rows naming it are counted in the facts, and
the taken changes say how many there were before. The figures that are not sums over single rows (cases and
referrals counted in their finding's campaign, pending closures, distinct special-group members, units with a
committee, the cases counted per slot of hours that the percentiles are read from) are recomputed for the
leaves marked dirty, and their difference to the stored leaf rows is folded the same way. A full recompute
(`full=True`, or figures lost in a crash) gives the same figures from the facts; tests/integration/reporting/
test_refresh.py compares the two on random histories.
"""

from __future__ import annotations

import logging
import time

import asyncpg

from services.reporting.domain.entities import corrections
from services.reporting.domain.figures import HOUR_SLOT_DIGITS
from services.reporting.domain.paths import ancestors, depth, parent_of
from shared.clock import BUREAU_TIME_ZONE
from shared.db import lock_key

log = logging.getLogger(__name__)
TZ = BUREAU_TIME_ZONE  # the bureau's calendar day (the default of settings' bureau_time_zone)

# The fact tables whose changes are logged (migrations/012): {name} in the SQL below is the table itself with
# sg = 1 for a full recompute, or the log rows a refresh took (sg = ±1).
LOGGED = (
    "org_units",
    "assignments",
    "visits",
    "findings",
    "committees",
    "sessions",
    "attendance",
    "teams",
    "team_members",
    "lectures",
    "lecturers",
)

# Figures that add up row by row: each fact row (weighted by sg) contributes on its own, whatever else is stored.
# Rows are (campaign, leaf, metric, dim, value); facts without a campaign (the structure) only get scope ''.
# The campaign's own facts (assignments, visits, findings) change in every class between two refreshes during a
# campaign and make most figure rows (a checklist row per item, a row per day, ...): they are stored and folded at
# the schools and above only (CAMPAIGN_TABLES); a grade's or class's are summed from its facts when read
# (store/reads.py). They are stored per campaign only: their all-campaigns figures (scope '') are summed over the
# campaigns when a stored node is read (CAMPAIGN_PART_METRICS, store/reads.py); stored as well, every change was folded
# twice into the school, the district and the city. The structure's figures are kept per leaf.
CAMPAIGN_TABLES = ("assignments", "visits", "findings")
CAMPAIGN_PART_METRICS = (  # the metrics of CAMPAIGN_PARTS (tests/unit/reporting/test_refresh_sql.py)
    "assignments",
    "visits_completed",
    "visits_by_mode",
    "visits_daily",
    "visits_missed",
    "checklist_answered",
    "checklist_yes",
    "visits_flagged",
    "flags",
    "guidance_topics",
    "findings",
    "findings_daily",
)
CAMPAIGN_PARTS = """
  SELECT a.campaign_id, a.org_path AS leaf, 'assignments' AS metric, '' AS dim, sum(a.sg) AS v
    FROM {assignments} a WHERE a.active GROUP BY 1, 2
  UNION ALL
  SELECT v.campaign_id, v.org_path, m.metric, m.dim, v.n
    FROM (SELECT campaign_id, org_path, mode, visited_on, sum(sg) AS n FROM {visits} v
          WHERE v.status = 'completed' GROUP BY 1, 2, 3, 4) v
    CROSS JOIN LATERAL (VALUES ('visits_completed', ''), ('visits_by_mode', v.mode),
                               ('visits_daily', v.visited_on::text)) m(metric, dim)
  UNION ALL
  SELECT v.campaign_id, v.org_path, 'visits_missed', '', sum(v.sg)
    FROM {visits} v WHERE v.status = 'missed' GROUP BY 1, 2
  UNION ALL
  SELECT v.campaign_id, v.org_path, m.metric, v.item, m.n
    FROM (SELECT v.campaign_id, v.org_path, i.item, sum(v.sg) AS answered, sum(v.sg) FILTER (WHERE i.yes) AS yes
          FROM {visits} v CROSS JOIN LATERAL (SELECT unnest(v.yes_items) AS item, true AS yes
                                              UNION ALL SELECT unnest(v.no_items), false) i
          WHERE v.status = 'completed' GROUP BY 1, 2, 3) v
    CROSS JOIN LATERAL (VALUES ('checklist_answered', v.answered), ('checklist_yes', v.yes)) m(metric, n)
    WHERE m.n <> 0
  UNION ALL
  SELECT v.campaign_id, v.org_path, m.metric, m.dim, sum(v.sg)
    FROM {visits} v CROSS JOIN LATERAL (
        SELECT 'visits_flagged' AS metric, '' AS dim WHERE cardinality(v.flag_items) > 0
        UNION ALL SELECT 'flags', unnest(v.flag_items)
        UNION ALL SELECT 'guidance_topics', unnest(v.guidance_topics)) m
    WHERE v.status = 'completed' GROUP BY 1, 2, 3, 4
  UNION ALL
  SELECT f.campaign_id, f.org_path, m.metric, m.dim, f.n
    FROM (SELECT campaign_id, org_path, category, severity, visited_on, sum(sg) AS n FROM {findings} f
          GROUP BY 1, 2, 3, 4, 5) f
    CROSS JOIN LATERAL (VALUES ('findings', f.category || '|' || f.severity),
                               ('findings_daily', f.visited_on::text)) m(metric, dim)
"""
STRUCTURE_PARTS = """
  SELECT NULL::text AS campaign_id, o.org_path AS leaf, 'org_units' AS metric, o.level AS dim, o.sg AS v
    FROM {org_units} o
  UNION ALL
  SELECT NULL, c.org_path, 'committees_active', '', c.sg FROM {committees} c WHERE c.active
  UNION ALL
  SELECT NULL, s.org_path, m.metric, '', m.v
    FROM {sessions} s CROSS JOIN LATERAL (VALUES ('sessions_held', s.sg), ('session_enrolled', s.enrolled * s.sg))
        m(metric, v)
  UNION ALL
  SELECT NULL, a.org_path, m.metric, m.dim, sum(a.sg)
    FROM {attendance} a CROSS JOIN LATERAL (VALUES ('attendance_present', ''), ('attendance_by_channel',
        CASE WHEN a.online THEN 'online' WHEN a.online IS NULL THEN 'unknown' ELSE 'in_person' END)) m(metric, dim)
    WHERE a.attended GROUP BY 2, 3, 4
  UNION ALL
  SELECT NULL, t.org_path, 'teams', '', t.sg FROM {teams} t
  UNION ALL
  SELECT NULL, t.org_path, 'team_members', t.role, t.sg FROM {team_members} t WHERE t.active AND t.role IS NOT NULL
  UNION ALL
  SELECT NULL, l.org_path, m.metric, m.dim, m.v
    FROM {lectures} l CROSS JOIN LATERAL (VALUES ('lectures', l.topic, l.sg),
        ('lecture_audience', l.topic, l.headcount * l.sg), ('lectures_by_lecturer', coalesce(l.lecturer_id, ''), l.sg),
        ('lecture_reach_units', '', l.audience_units * l.sg)) m(metric, dim, v)
  UNION ALL
  SELECT NULL, l.org_path, 'lecturers', '', l.sg FROM {lecturers} l WHERE l.active
"""

# Figures recomputed per dirty leaf ({f:x} filters table alias x on the leaves): a case counts in its finding's
# campaign, a referral in its case's, a closure is pending by its case's state; special-group members and units
# with a committee are distinct counts. The percentiles' rows count the cases per slot of hours (HOUR_SLOT_DIGITS
# significant digits, at most two decimals; trim_scale: one text per number) from the finding to the case and from the
# case to its first contact: counts fold like any other figure, where sorting every case under each refreshed
# ancestor cost every case ever opened, at every refresh.
HOURS = "extract(epoch FROM {b} - {a})::float8 / 3600"  # float8: numeric's log took ~10x the time
DIGITS = f"least(2, {HOUR_SLOT_DIGITS - 1} - floor(log(greatest(abs({{h}}), 1e-9)))::int)"
SLOT = f"trim_scale(round(({{h}})::numeric, {DIGITS}))::text"
TO_CASE, TO_CONTACT = (
    HOURS.format(a="c.finding_recorded_at", b="c.opened_at"),
    HOURS.format(a="c.opened_at", b="c.first_contact_at"),
)
PER_LEAF_PARTS = f"""
  SELECT cf.campaign_id, c.org_path AS leaf, m.metric, m.dim, 1 AS v
    FROM cases c LEFT JOIN findings cf ON cf.finding_id = c.finding_id
    CROSS JOIN LATERAL (VALUES
        ('cases_total', '', true),
        ('cases_open', '', c.state = 'open'),
        ('cases_closed', '', c.state = 'closed'),
        ('cases_overdue', '', c.state = 'open' AND c.overdue IS TRUE),
        ('cases_opened_daily', (c.opened_at AT TIME ZONE '{TZ}')::date::text, c.opened_at IS NOT NULL),
        ('cases_closed_daily', (c.closed_at AT TIME ZONE '{TZ}')::date::text, c.state = 'closed'),
        ('finding_to_case_hours', {SLOT.format(h=TO_CASE)}, {TO_CASE} IS NOT NULL),
        ('case_to_contact_hours', {SLOT.format(h=TO_CONTACT)}, {TO_CONTACT} IS NOT NULL)
    ) m(metric, dim, ok)
    WHERE m.ok AND {{f:c}}
  UNION ALL
  SELECT cf.campaign_id, c.org_path, 'cases_closure_pending', '', 1
    FROM case_closures p JOIN cases c USING (case_id) LEFT JOIN findings cf ON cf.finding_id = c.finding_id
    WHERE c.state <> 'closed' AND p.proposed_at > coalesce(p.settled_at, '-infinity') AND {{f:c}}
  UNION ALL
  SELECT rf.campaign_id, r.org_path, 'referrals', r.department || '|' || r.state, 1
    FROM referrals r LEFT JOIN cases rc ON rc.case_id = r.case_id
    LEFT JOIN findings rf ON rf.finding_id = rc.finding_id
    WHERE {{f:r}}
  UNION ALL
  SELECT NULL, g.org_path, 'special_group', g.grp, 1
    FROM (SELECT DISTINCT org_path, student_id, grp FROM memberships g
          WHERE g.verified IS DISTINCT FROM false AND (g.ended_at IS NULL OR g.registered_at > g.ended_at)
            AND {{f:g}}) g
  UNION ALL
  SELECT NULL, c.org_path, 'units_with_committee', c.level, 1
    FROM (SELECT DISTINCT ON (org_path) org_path, level FROM committees c
          WHERE c.active AND c.level IS NOT NULL AND {{f:c}} ORDER BY org_path, level) c
"""
PER_LEAF_METRICS = [
    "cases_total",
    "cases_open",
    "cases_closed",
    "cases_overdue",
    "cases_opened_daily",
    "cases_closed_daily",
    "cases_closure_pending",
    "finding_to_case_hours",
    "case_to_contact_hours",
    "referrals",
    "special_group",
    "units_with_committee",
]

# Each campaign's rows and the all-campaigns rows (scope '') in one pass.
BY_SCOPE = """
SELECT CASE WHEN GROUPING(campaign_id) = 1 THEN '' ELSE campaign_id END AS scope, leaf, metric, dim, sum(v) AS v
FROM ({parts}) x
GROUP BY GROUPING SETS ((campaign_id, leaf, metric, dim), (leaf, metric, dim))
HAVING GROUPING(campaign_id) = 1 OR campaign_id IS NOT NULL
"""

# Each campaign's rows only.
BY_CAMPAIGN = "SELECT campaign_id AS scope, leaf, metric, dim, sum(v) AS v FROM ({parts}) x GROUP BY 1, 2, 3, 4"

# Where distinct teachers and families occur, one row per fact row (weighted by sg), in every campaign and in ''.
ENTITY_ROWS = """
  SELECT s.scope, a.org_path AS leaf, m.metric, m.entity_id, a.sg
    FROM {assignments} a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope)
    CROSS JOIN LATERAL (VALUES ('teachers_assigned', a.teacher_id), ('families_assigned', a.family_id))
        m(metric, entity_id)
    WHERE a.active
  UNION ALL
  SELECT s.scope, v.org_path, m.metric, m.entity_id, v.sg
    FROM {visits} v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope)
    CROSS JOIN LATERAL (VALUES ('teachers_active', v.teacher_id), ('families_visited', v.family_id))
        m(metric, entity_id)
    WHERE v.status = 'completed'
"""
ENTITY_COUNTS = f"""
SELECT scope, leaf, metric, entity_id, sum(sg) AS n FROM ({ENTITY_ROWS}) e GROUP BY 1, 2, 3, 4 HAVING sum(sg) <> 0
"""


def _sources(full: bool) -> dict[str, str]:
    """Each logged table as a source: the table itself (sg = 1), or the log rows a refresh took."""
    return {t: f"(SELECT t.*, 1 AS sg FROM {t} t)" if full else f"taken_{t}" for t in LOGGED}


# A leaf's distinct entities (scope by scope: distinct counts do not add up over campaigns), plus the corrections of
# entities seen at several paths, which also live at inner nodes.
LEAF_ENTITY_SQL = f"""
INSERT INTO leaf_metrics (scope, leaf, metric, dim, value)
SELECT scope, leaf, metric, '', sum(n) FROM (
  SELECT scope, leaf, metric, count(*) AS n FROM ({ENTITY_COUNTS.format(**_sources(True))}) e GROUP BY 1, 2, 3
  UNION ALL
  SELECT w.scope, w.node, w.metric, sum(w.weight) FROM entity_corrections w GROUP BY 1, 2, 3
) x GROUP BY 1, 2, 3 HAVING sum(n) <> 0
"""


def _structure_sql(full: bool) -> str:
    return BY_SCOPE.format(parts=STRUCTURE_PARTS.format(**_sources(full)))


def campaign_sql(sources: dict[str, str], *, all_campaigns: bool = False) -> str:
    """The campaign facts' figures per exact path (scope, leaf, metric, dim, v) from the given sources: each
    campaign's, and with `all_campaigns` their sums in scope '' too (a grade's or class's read, from its facts)."""
    return (BY_SCOPE if all_campaigns else BY_CAMPAIGN).format(parts=CAMPAIGN_PARTS.format(**sources))


def _per_leaf_sql(full: bool) -> str:
    sql = BY_SCOPE.format(parts=PER_LEAF_PARTS)
    for alias in "crg":
        sql = sql.replace(f"{{f:{alias}}}", "true" if full else f"{alias}.org_path = ANY($1::text[])")
    return sql


# Where each distinct entity occurs: (kind, entity, scope, metric, path); {metric} filters the entities (_entity_sql).
ENTITY_PATHS = """
  SELECT 'teacher' AS kind, a.teacher_id AS entity_id, s.scope, 'teachers_assigned' AS metric, a.org_path AS path
    FROM assignments a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope) WHERE a.active AND {teachers_assigned}
  UNION ALL
  SELECT 'teacher', v.teacher_id, s.scope, 'teachers_active', v.org_path
    FROM visits v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope)
    WHERE v.status = 'completed' AND {teachers_active}
  UNION ALL
  SELECT 'family', a.family_id, s.scope, 'families_assigned', a.org_path
    FROM assignments a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope) WHERE a.active AND {families_assigned}
  UNION ALL
  SELECT 'family', v.family_id, s.scope, 'families_visited', v.org_path
    FROM visits v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope)
    WHERE v.status = 'completed' AND {families_visited}
"""

REFRESH_WORK_MEM = "64MB"
# A refresh by deltas, for its transaction:
# * Its groupings (tens of thousands of rows in a campaign) spilled to disk at the default 4 MB
#   (a full refresh keeps the default: with 64 MB it cost more CPU, docs/scaling.md session 9); one refresh runs at a
#   time per schema.
# * No JIT: it compiled the larger statements (~90 ms each) for a single run.
# * Index probes priced as what they are here, reads of pages the projection has just written: at the default
#   random_page_cost (4, a disk's seek) the planner read all of the city's visits and assignments to find the few
#   thousand families a refresh marked (the entity corrections: ~120 ms a table at scale 1). Measured on a kept
#   full-city schema, a refresh of 7,500 new visits: its backend's CPU 1.53 -> 1.40 s in the medians, lower in 7 of 7
#   pairs (docs/performance.md, session 22). A full refresh reads every row and keeps the default.
DELTA_SETTINGS = f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'; SET LOCAL jit = off; SET LOCAL random_page_cost = 1.1"

# Nodes down to schools keep stored figures; a grade or class is summed from the leaves under it when read (a school
# holds a few dozen classes). Storing every class and grade as well tripled the rows each refresh rewrote.
STORED_DEPTH = 3


# A school (the deepest stored node), or a grade or class when read: every leaf row of its subtree, itself included
# ([p/, p0) is everything under p/ in C order). {nodes} is the parameter holding the nodes, {scope} filters scopes.
SUBTREE_SQL = """
SELECT p.node, l.scope, l.metric, l.dim, sum(l.value) AS value
FROM unnest({nodes}::text[]) p(node)
CROSS JOIN LATERAL (
  SELECT scope, metric, dim, value FROM leaf_metrics WHERE leaf = p.node {scope}
  UNION ALL
  SELECT scope, metric, dim, value FROM leaf_metrics WHERE leaf >= p.node || '/' AND leaf < p.node || '0' {scope}
) l
GROUP BY 1, 2, 3, 4 HAVING sum(l.value) <> 0
"""

# In a full refresh, a school's or node's own campaign figures (and those of the leaves under a school) come from
# `campaign_nodes` (CAMPAIGN_NODES_SQL).
ROLLUP_DEEPEST_SQL = f"""
INSERT INTO node_metrics (scope, node, parent, metric, dim, value)
SELECT s.scope, s.node, p.parent, s.metric, s.dim, sum(s.value)
FROM (
  {SUBTREE_SQL.replace("{nodes}", "$1").replace("{scope}", "")}
  UNION ALL
  SELECT node, scope, metric, dim, value FROM campaign_nodes WHERE node = ANY($1::text[])
) s
JOIN unnest($1::text[], $2::text[]) p(node, parent) ON p.node = s.node
GROUP BY s.scope, s.node, p.parent, s.metric, s.dim HAVING sum(s.value) <> 0
"""

# A node above the schools: its own leaf rows and its (stored) children's rows.
ROLLUP_SQL = """
INSERT INTO node_metrics (scope, node, parent, metric, dim, value)
SELECT x.scope, x.node, p.parent, x.metric, x.dim, x.value FROM (
  SELECT scope, node, metric, dim, sum(value) AS value FROM (
    SELECT scope, leaf AS node, metric, dim, value FROM leaf_metrics WHERE leaf = ANY($1::text[])
    UNION ALL
    SELECT scope, node, metric, dim, value FROM campaign_nodes WHERE node = ANY($1::text[])
    UNION ALL
    SELECT scope, parent, metric, dim, value FROM node_metrics WHERE parent = ANY($1::text[])
  ) u GROUP BY scope, node, metric, dim HAVING sum(value) <> 0
) x JOIN unnest($1::text[], $2::text[]) p(node, parent) ON p.node = x.node
"""


def _entity_sql(full: bool) -> str:
    """Where every entity occurs (full), or, per metric, the entities the temp table `marked` names for it."""
    sql = ENTITY_PATHS
    for metric, (table, col, _) in ENTITY_FACTS.items():
        marked = f"{table[0]}.{col} IN (SELECT entity_id FROM marked WHERE metric = '{metric}')"
        sql = sql.replace(f"{{{metric}}}", "true" if full else marked)
    return sql


async def update_figures(conn: asyncpg.Connection, schema: str, *, full: bool = False) -> bool:
    """Fold what changed into the figures (or recompute everything); False when another replica holds the refresh.

    One snapshot for the whole refresh (repeatable read): the change logs and dirty marks it takes are exactly
    those of the facts it reads; what commits later stays for the next refresh. The lock is taken before the
    transaction starts, so the snapshot is never older than the previous refresh's commit.
    """
    key = lock_key(f"reporting-refresh:{schema}")
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        return False
    try:
        async with conn.transaction(isolation="repeatable_read"):
            if full or await get_figures_lost(conn):
                await _refresh_full(conn)
            else:
                await _refresh_deltas(conn)
            await conn.execute("UPDATE refresh_state SET generation = generation + 1, refreshed_at = now()")
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
    return True


async def get_figures_lost(conn: asyncpg.Connection) -> bool:
    """The figures are unlogged tables: empty after a database crash while the facts are not."""
    return bool(
        await conn.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM node_metrics)"
            " AND (EXISTS (SELECT 1 FROM org_units) OR EXISTS (SELECT 1 FROM visits) OR EXISTS (SELECT 1 FROM cases))"
        )
    )


async def _take_logs(conn: asyncpg.Connection) -> None:
    """Move the change-log rows this snapshot sees into temp tables `taken_<table>` (one round trip)."""
    await conn.execute(
        "CREATE TEMP TABLE deltas (scope text, leaf text, metric text, dim text, dv numeric) ON COMMIT DROP;"
        " CREATE TEMP TABLE node_deltas (LIKE deltas) ON COMMIT DROP;"
        + "".join(
            f"CREATE TEMP TABLE taken_{t} ON COMMIT DROP AS SELECT * FROM {t}_log LIMIT 0;"
            f" WITH x AS (DELETE FROM {t}_log RETURNING *) INSERT INTO taken_{t} SELECT * FROM x;"
            for t in LOGGED
        )
    )


# Distinct entities: a leaf's count of a teacher or family moves by one when the fact rows naming the entity there
# (per scope and metric) leave 0 or reach it. The taken rows give each key's change m.n; the rows naming it now are
# counted in the facts at that key only (entity, leaf, campaign: the entity indexes of migrations/017), and only as
# far as the answer needs: after > 0 and before = after - m.n > 0 are decided by min(after, max(m.n, 0) + 1).
# Reading every fact row of each moved teacher and family (all their leaves, both tables, every campaign) was the
# refresh's largest step in a campaign. The keys that flipped are kept in `entity_flips`: only those entities' sets
# of paths changed, so only their corrections are redone (_refresh_entities).
ENTITY_FACTS = {
    "teachers_assigned": ("assignments", "teacher_id", "active"),
    "families_assigned": ("assignments", "family_id", "active"),
    "teachers_active": ("visits", "teacher_id", "status = 'completed'"),
    "families_visited": ("visits", "family_id", "status = 'completed'"),
}
_KEY_NOW = """
  SELECT m.scope, m.leaf, m.metric, m.entity_id, m.n, c.n AS now FROM entity_moves m
  CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM {t} t WHERE t.{col} = m.entity_id
      AND t.org_path = m.leaf AND {scope} AND {ok} LIMIT greatest(m.n, 0) + 1) x) c
  WHERE m.metric = '{metric}' AND m.scope {op} ''"""
ENTITY_DELTA_SQL = f"""
CREATE TEMP TABLE entity_moves ON COMMIT DROP AS {ENTITY_COUNTS.format(**_sources(False))};
CREATE TEMP TABLE entity_flips ON COMMIT DROP AS
SELECT scope, leaf, metric, entity_id, (now > 0)::int - (now - n > 0)::int AS d FROM ({
    " UNION ALL ".join(
        _KEY_NOW.format(t=t, col=col, ok=ok, metric=metric, op=op, scope=scope)
        for metric, (t, col, ok) in ENTITY_FACTS.items()
        for op, scope in (("=", "true"), ("<>", "t.campaign_id = m.scope"))
    )
}) k WHERE (now > 0) <> (now - n > 0);
INSERT INTO deltas SELECT scope, leaf, metric, '', sum(d) FROM entity_flips GROUP BY 1, 2, 3;
"""

# The summed deltas: added to the leaves, then to every stored ancestor: each distinct leaf (or school) of the deltas
# is mapped once to its stored ancestors (`leaf_nodes`: the school, district and city, with their parents), and the
# deltas are grouped once per ancestor. Path functions per delta row (a regular expression per row and level) took
# ~60 % of this step. Rows that reach 0 go, as a full recompute never writes them (the upserts return the few that
# did).
DEPTH = "(length({p}) - length(replace({p}, '/', '')))"  # paths.depth: 1 for the city
PREFIX3 = "substring(leaf FROM '^/[^/]*/[^/]*/[^/]*')"  # the school-level prefix of a deeper path
SCHOOL_OF = f"CASE WHEN {DEPTH.format(p='leaf')} <= 3 THEN leaf ELSE {PREFIX3} END"  # a leaf's deepest stored node
assert STORED_DEPTH == 3  # the levels below
FOLD_SQL = """
CREATE TEMP TABLE leaf_sums ON COMMIT DROP AS
  SELECT scope, leaf, metric, dim, sum(dv) AS dv FROM deltas GROUP BY 1, 2, 3, 4 HAVING sum(dv) <> 0;
CREATE TEMP TABLE zeros (node text, scope text, metric text, dim text) ON COMMIT DROP;
WITH u AS (
  INSERT INTO leaf_metrics AS l (scope, leaf, metric, dim, value) SELECT * FROM leaf_sums
  ON CONFLICT (leaf, scope, metric, dim) DO UPDATE SET value = l.value + excluded.value
  RETURNING l.leaf, l.scope, l.metric, l.dim, l.value
) INSERT INTO zeros SELECT leaf, scope, metric, dim FROM u WHERE value = 0;
DELETE FROM leaf_metrics l USING zeros d
  WHERE (l.leaf, l.scope, l.metric, l.dim) = (d.node, d.scope, d.metric, d.dim) AND l.value = 0;
TRUNCATE zeros;
CREATE TEMP TABLE leaf_nodes ON COMMIT DROP AS
  SELECT l.leaf, a.node, a.parent
  FROM (SELECT leaf, '/' || split_part(leaf, '/', 2) AS n1, split_part(leaf, '/', 3) AS s2,
               split_part(leaf, '/', 4) AS s3
        FROM (SELECT leaf FROM leaf_sums UNION SELECT leaf FROM node_deltas) l) l
  CROSS JOIN LATERAL (VALUES (n1, '', true), (n1 || '/' || s2, n1, s2 <> ''),
                             (n1 || '/' || s2 || '/' || s3, n1 || '/' || s2, s2 <> '' AND s3 <> '')) a(node, parent, ok)
  WHERE a.ok;
ANALYZE leaf_nodes;
CREATE TEMP TABLE node_sums ON COMMIT DROP AS
  SELECT d.scope, a.node, a.parent, d.metric, d.dim, sum(d.dv) AS dv
  FROM (SELECT * FROM leaf_sums UNION ALL SELECT * FROM node_deltas) d JOIN leaf_nodes a USING (leaf)
  GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.dv) <> 0;
WITH u AS (
  INSERT INTO node_metrics AS m (scope, node, parent, metric, dim, value)
  SELECT scope, node, parent, metric, dim, dv FROM node_sums
  ON CONFLICT (node, scope, metric, dim) DO UPDATE SET value = m.value + excluded.value
  RETURNING m.node, m.scope, m.metric, m.dim, m.value
) INSERT INTO zeros SELECT node, scope, metric, dim FROM u WHERE value = 0;
DELETE FROM node_metrics m USING zeros d
  WHERE (m.node, m.scope, m.metric, m.dim) = (d.node, d.scope, d.metric, d.dim) AND m.value = 0;
"""

# A refresh's campaign figures, at their deepest stored node already (the fold adds them to it and its ancestors):
# the taken rows' paths are cut to it first (once per row; the figures then group by school, not by class).
NODE_DELTAS_SQL = (
    "".join(f"UPDATE taken_{t} SET org_path = {SCHOOL_OF.replace('leaf', 'org_path')};" for t in CAMPAIGN_TABLES)
    + f"INSERT INTO node_deltas SELECT * FROM ({campaign_sql(_sources(False))}) c WHERE v <> 0"
)

# A full refresh's campaign figures at their deepest stored node (rolled up with the leaves by _rollup).
CAMPAIGN_NODES_SQL = f"""
CREATE TEMP TABLE campaign_nodes ON COMMIT DROP AS
  SELECT scope, {SCHOOL_OF} AS node, metric, dim, sum(v) AS value
  FROM ({campaign_sql(_sources(True))}) c GROUP BY 1, 2, 3, 4 HAVING sum(v) <> 0;
CREATE INDEX ON campaign_nodes (node);
ANALYZE campaign_nodes
"""


# Anything to fold: an idle refresh (every second while nothing happens) stops at this one query.
PENDING_SQL = "SELECT " + " OR ".join(
    f"EXISTS (SELECT 1 FROM {t})" for t in ("dirty_leaves", *(f"{t}_log" for t in LOGGED))
)


async def _refresh_deltas(conn: asyncpg.Connection, settings: str = DELTA_SETTINGS) -> None:
    started = time.perf_counter()
    if not await conn.fetchval(PENDING_SQL):
        return
    await conn.execute(settings)
    await _take_logs(conn)
    await conn.execute(f"INSERT INTO deltas {_structure_sql(False)}")
    await conn.execute(ENTITY_DELTA_SQL)
    await conn.execute(NODE_DELTAS_SQL)  # after the entities: it cuts the taken rows' paths to their schools
    await _refresh_entities(conn)
    folded = time.perf_counter()
    # Marks are appended per event: only the distinct leaves come back to Python.
    leaves = sorted(
        r["path"]
        for r in await conn.fetch("WITH d AS (DELETE FROM dirty_leaves RETURNING path) SELECT DISTINCT path FROM d")
    )
    if leaves:
        await conn.execute(
            "INSERT INTO deltas SELECT scope, leaf, metric, dim, -value FROM leaf_metrics"
            " WHERE leaf = ANY($1::text[]) AND metric = ANY($2::text[])",
            leaves,
            PER_LEAF_METRICS,
        )
        await conn.execute(f"INSERT INTO deltas {_per_leaf_sql(False)}", leaves)
    per_leaf = time.perf_counter()
    await conn.execute(FOLD_SQL)
    log.info(
        "refresh: logged changes and entities %.2fs, %d dirty leaves %.2fs, fold %.2fs",
        folded - started,
        len(leaves),
        per_leaf - folded,
        time.perf_counter() - per_leaf,
    )


async def _refresh_entities(conn: asyncpg.Connection) -> None:
    """Redo the corrections of the teachers and families whose set of paths changed (a key of theirs flipped in
    this refresh: `entity_flips`), for the metrics whose keys flipped only (a metric's corrections follow its own
    paths: a family's first visit changes its visited paths, not its assigned ones, whose facts are not read again);
    what changed goes into `deltas` (a correction is a figure row at an inner node). Only rows that differ are
    written. Most fact changes of an entity are at a path it already had (a teacher's second visit in a class): its
    corrections stay."""
    await conn.execute(
        "CREATE TEMP TABLE marked (kind text, metric text, entity_id text) ON COMMIT DROP;"
        " CREATE TEMP TABLE new_corrections (LIKE entity_corrections) ON COMMIT DROP"
    )
    n = await conn.fetchval(
        "WITH i AS (INSERT INTO marked SELECT DISTINCT CASE WHEN metric LIKE 'teachers%' THEN 'teacher'"
        " ELSE 'family' END, metric, entity_id FROM entity_flips RETURNING 1) SELECT count(*) FROM i"
    )
    if not n:
        return
    await conn.execute("ANALYZE marked")
    await _write_corrections(conn, _entity_sql(False), "new_corrections")
    await conn.execute(
        """WITH gone AS (
            DELETE FROM entity_corrections w USING marked m
            WHERE w.kind = m.kind AND w.entity_id = m.entity_id AND w.metric = m.metric AND NOT EXISTS (
                SELECT 1 FROM new_corrections n WHERE (n.kind, n.entity_id, n.scope, n.metric, n.node, n.weight)
                    = (w.kind, w.entity_id, w.scope, w.metric, w.node, w.weight))
            RETURNING w.scope, w.node, w.metric, -w.weight AS dv
        ), came AS (
            INSERT INTO entity_corrections SELECT n.* FROM new_corrections n WHERE NOT EXISTS (
                SELECT 1 FROM entity_corrections w WHERE (w.kind, w.entity_id, w.scope, w.metric, w.node, w.weight)
                    = (n.kind, n.entity_id, n.scope, n.metric, n.node, n.weight))
            RETURNING scope, node, metric, weight AS dv
        )
        INSERT INTO deltas SELECT scope, node, metric, '', dv FROM gone UNION ALL SELECT scope, node, metric, '', dv
        FROM came"""
    )


# Corrections written per COPY while the entities' paths are read through a cursor.
CORRECTION_CHUNK = 10_000


async def _write_corrections(conn: asyncpg.Connection, paths_sql: str, table: str) -> None:
    """Write the corrections of the entities `paths_sql` finds at more than one path into `table`.

    Each entity's distinct paths only (its rows repeat a path once per assignment and visit, in every campaign), read
    through a cursor and written in chunks: after a launch every family is marked, and fetching their paths at once
    held ~870,000 path strings in the refreshing replica (58,000 entities after 4 campaigns at scale 0.5), which
    kept the high-water mark of its heap and grew with every campaign — the soak's RSS steps in reporting.
    """
    out: list[tuple[str, str, str, str, str, int]] = []
    columns = ["kind", "entity_id", "scope", "metric", "node", "weight"]
    async for g in conn.cursor(
        "SELECT kind, entity_id, scope, metric, array_agg(path) AS paths"
        f" FROM (SELECT DISTINCT * FROM ({paths_sql}) d) p GROUP BY 1, 2, 3, 4 HAVING min(path) <> max(path)",
        prefetch=1000,
    ):
        out += [
            (g["kind"], g["entity_id"], g["scope"], g["metric"], node, c) for node, c in corrections(g["paths"]).items()
        ]
        if len(out) >= CORRECTION_CHUNK:
            await conn.copy_records_to_table(table, records=out, columns=columns)
            out = []
    if out:
        await conn.copy_records_to_table(table, records=out, columns=columns)


async def _rollup(conn: asyncpg.Connection, nodes: set[str]) -> None:
    """Recompute the given stored nodes deepest first: a school from its subtree's leaves, a node above it from its
    own leaf rows and its children's rows."""
    by_depth: dict[int, list[str]] = {}
    for n in nodes:
        if depth(n) <= STORED_DEPTH:
            by_depth.setdefault(depth(n), []).append(n)
    for d in sorted(by_depth, reverse=True):
        batch = sorted(by_depth[d])
        await conn.execute("DELETE FROM node_metrics WHERE node = ANY($1::text[])", batch)
        sql = ROLLUP_DEEPEST_SQL if d == STORED_DEPTH else ROLLUP_SQL
        await conn.execute(sql, batch, [parent_of(n) for n in batch])


async def _refresh_full(conn: asyncpg.Connection) -> None:
    steps: list[tuple[str, float]] = []
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps.append((name, now - t))
        t = now

    # The logs and marks this snapshot sees are in the facts it reads: they go (DELETE, not TRUNCATE, which would
    # also empty what commits after the snapshot).
    await conn.execute(
        "TRUNCATE entity_corrections, leaf_metrics, node_metrics;"
        " DELETE FROM dirty_leaves;" + "".join(f"DELETE FROM {t}_log;" for t in LOGGED)
    )
    await _write_corrections(conn, _entity_sql(True), "entity_corrections")
    step("entity corrections")
    await conn.execute(LEAF_ENTITY_SQL)
    await conn.execute(f"INSERT INTO leaf_metrics {_structure_sql(True)}")
    await conn.execute(f"INSERT INTO leaf_metrics {_per_leaf_sql(True)}")
    await conn.execute(CAMPAIGN_NODES_SQL)
    step("leaf figures")
    paths = await conn.fetch("SELECT DISTINCT leaf FROM leaf_metrics UNION SELECT DISTINCT node FROM campaign_nodes")
    await _rollup(conn, {a for r in paths for a in ancestors(r[0])})
    step("roll-up")
    log.info("full refresh: %s", ", ".join(f"{n} {s:.1f}s" for n, s in steps))

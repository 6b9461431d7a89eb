"""Refresh of the materialised figures: dirty leaves → leaf_metrics → node_metrics rolled up to the city."""

from __future__ import annotations

import logging
import time

import asyncpg

from services.reporting.domain.entities import corrections
from services.reporting.domain.paths import ancestors, depth, parent_of
from shared.clock import BUREAU_TIME_ZONE
from shared.db import try_xact_lock

log = logging.getLogger(__name__)
FULL_AT = 3000  # dirty leaves from which a full refresh is cheaper than an incremental one
TZ = BUREAU_TIME_ZONE  # the bureau's calendar day (the default of settings' bureau_time_zone)

# Additive figures of every fact whose org_path is one of the leaves ({f} filters on a table alias). Each fact
# table is aggregated by (campaign, leaf, dims) first; GROUPING SETS then give each campaign's rows and the
# all-campaigns rows (scope '') in one pass. Facts without a campaign (the structure) only get scope ''.
LEAF_SQL = f"""
INSERT INTO leaf_metrics (scope, leaf, metric, dim, value)
SELECT CASE WHEN GROUPING(campaign_id) = 1 THEN '' ELSE campaign_id END, leaf, metric, dim, sum(v)
FROM (
  SELECT a.campaign_id, a.org_path AS leaf, 'assignments' AS metric, '' AS dim, count(*) AS v
    FROM assignments a WHERE a.active AND {{f:a}} GROUP BY 1, 2
  UNION ALL
  SELECT v.campaign_id, v.org_path, m.metric, m.dim, v.n
    FROM (SELECT campaign_id, org_path, mode, visited_on, count(*) AS n FROM visits v
          WHERE v.status = 'completed' AND {{f:v}} GROUP BY 1, 2, 3, 4) v
    CROSS JOIN LATERAL (VALUES ('visits_completed', ''), ('visits_by_mode', v.mode),
                               ('visits_daily', v.visited_on::text)) m(metric, dim)
  UNION ALL
  SELECT v.campaign_id, v.org_path, 'visits_missed', '', count(*)
    FROM visits v WHERE v.status = 'missed' AND {{f:v}} GROUP BY 1, 2
  UNION ALL
  SELECT v.campaign_id, v.org_path, m.metric, v.item, m.n
    FROM (SELECT v.campaign_id, v.org_path, i.item, count(*) AS answered, count(*) FILTER (WHERE i.yes) AS yes
          FROM visits v CROSS JOIN LATERAL (SELECT unnest(v.yes_items) AS item, true AS yes
                                            UNION ALL SELECT unnest(v.no_items), false) i
          WHERE v.status = 'completed' AND {{f:v}} GROUP BY 1, 2, 3) v
    CROSS JOIN LATERAL (VALUES ('checklist_answered', v.answered), ('checklist_yes', v.yes)) m(metric, n)
    WHERE m.n > 0
  UNION ALL
  SELECT v.campaign_id, v.org_path, m.metric, m.dim, count(*)
    FROM visits v CROSS JOIN LATERAL (
        SELECT 'visits_flagged' AS metric, '' AS dim WHERE cardinality(v.flag_items) > 0
        UNION ALL SELECT 'flags', unnest(v.flag_items)
        UNION ALL SELECT 'guidance_topics', unnest(v.guidance_topics)) m
    WHERE v.status = 'completed' AND {{f:v}} GROUP BY 1, 2, 3, 4
  UNION ALL
  SELECT f.campaign_id, f.org_path, m.metric, m.dim, f.n
    FROM (SELECT campaign_id, org_path, category, severity, visited_on, count(*) AS n FROM findings f
          WHERE {{f:f}} GROUP BY 1, 2, 3, 4, 5) f
    CROSS JOIN LATERAL (VALUES ('findings', f.category || '|' || f.severity),
                               ('findings_daily', f.visited_on::text)) m(metric, dim)
  UNION ALL
  SELECT cf.campaign_id, c.org_path, m.metric, m.dim, 1
    FROM cases c LEFT JOIN findings cf ON cf.finding_id = c.finding_id
    CROSS JOIN LATERAL (VALUES
        ('cases_total', '', true),
        ('cases_open', '', c.state = 'open'),
        ('cases_closed', '', c.state = 'closed'),
        ('cases_overdue', '', c.state = 'open' AND c.overdue IS TRUE),
        ('cases_opened_daily', (c.opened_at AT TIME ZONE '{TZ}')::date::text, c.opened_at IS NOT NULL),
        ('cases_closed_daily', (c.closed_at AT TIME ZONE '{TZ}')::date::text, c.state = 'closed')
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
  SELECT NULL, o.org_path, 'org_units', o.level, 1 FROM org_units o WHERE {{f:o}}
  UNION ALL
  SELECT NULL, c.org_path, 'units_with_committee', c.level, 1
    FROM (SELECT DISTINCT ON (org_path) org_path, level FROM committees c
          WHERE c.active AND c.level IS NOT NULL AND {{f:c}} ORDER BY org_path, level) c
  UNION ALL
  SELECT NULL, c.org_path, 'committees_active', '', 1 FROM committees c WHERE c.active AND {{f:c}}
  UNION ALL
  SELECT NULL, s.org_path, m.metric, '', m.v
    FROM sessions s CROSS JOIN LATERAL (VALUES ('sessions_held', 1), ('session_enrolled', s.enrolled)) m(metric, v)
    WHERE {{f:s}}
  UNION ALL
  SELECT NULL, a.org_path, m.metric, m.dim, count(*)
    FROM attendance a CROSS JOIN LATERAL (VALUES ('attendance_present', ''), ('attendance_by_channel',
        CASE WHEN a.online THEN 'online' WHEN a.online IS NULL THEN 'unknown' ELSE 'in_person' END)) m(metric, dim)
    WHERE a.attended AND {{f:a}} GROUP BY 2, 3, 4
  UNION ALL
  SELECT NULL, t.org_path, 'teams', '', 1 FROM teams t WHERE {{f:t}}
  UNION ALL
  SELECT NULL, t.org_path, 'team_members', t.role, 1 FROM team_members t
    WHERE t.active AND t.role IS NOT NULL AND {{f:t}}
  UNION ALL
  SELECT NULL, l.org_path, m.metric, m.dim, m.v
    FROM lectures l CROSS JOIN LATERAL (VALUES ('lectures', l.topic, 1), ('lecture_audience', l.topic, l.headcount),
        ('lectures_by_lecturer', coalesce(l.lecturer_id, ''), 1), ('lecture_reach_units', '', l.audience_units))
        m(metric, dim, v)
    WHERE {{f:l}}
  UNION ALL
  SELECT NULL, l.org_path, 'lecturers', '', 1 FROM lecturers l WHERE l.active AND {{f:l}}
) x
GROUP BY GROUPING SETS ((campaign_id, leaf, metric, dim), (leaf, metric, dim))
HAVING GROUPING(campaign_id) = 1 OR campaign_id IS NOT NULL
"""

# Distinct teachers and families per leaf (scope by scope: distinct counts do not add up over campaigns), plus the
# corrections of entities seen at several paths, which also live at inner nodes.
LEAF_ENTITY_SQL = """
INSERT INTO leaf_metrics (scope, leaf, metric, dim, value)
SELECT scope, leaf, metric, '', sum(n) FROM (
  SELECT s.scope, a.org_path AS leaf, 'teachers_assigned' AS metric, count(DISTINCT a.teacher_id) AS n
    FROM assignments a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope) WHERE a.active AND {f:a}
    GROUP BY 1, 2
  UNION ALL
  SELECT s.scope, a.org_path, 'families_assigned', count(DISTINCT a.family_id)
    FROM assignments a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope) WHERE a.active AND {f:a}
    GROUP BY 1, 2
  UNION ALL
  SELECT s.scope, v.org_path, 'teachers_active', count(DISTINCT v.teacher_id)
    FROM visits v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope) WHERE v.status = 'completed' AND {f:v}
    GROUP BY 1, 2
  UNION ALL
  SELECT s.scope, v.org_path, 'families_visited', count(DISTINCT v.family_id)
    FROM visits v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope) WHERE v.status = 'completed' AND {f:v}
    GROUP BY 1, 2
  UNION ALL
  SELECT w.scope, w.node, w.metric, sum(w.weight) FROM entity_corrections w WHERE {n:w} GROUP BY 1, 2, 3
) x GROUP BY 1, 2, 3 HAVING sum(n) <> 0
"""

# Where each distinct entity occurs: (kind, entity, scope, metric, path).
ENTITY_PATHS = """
  SELECT 'teacher' AS kind, a.teacher_id AS entity_id, s.scope, 'teachers_assigned' AS metric, a.org_path AS path
    FROM assignments a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope) WHERE a.active AND {t:a}
  UNION ALL
  SELECT 'teacher', v.teacher_id, s.scope, 'teachers_active', v.org_path
    FROM visits v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope) WHERE v.status = 'completed' AND {t:v}
  UNION ALL
  SELECT 'family', a.family_id, s.scope, 'families_assigned', a.org_path
    FROM assignments a CROSS JOIN LATERAL (VALUES (''), (a.campaign_id)) s(scope) WHERE a.active AND {fam:a}
  UNION ALL
  SELECT 'family', v.family_id, s.scope, 'families_visited', v.org_path
    FROM visits v CROSS JOIN LATERAL (VALUES (''), (v.campaign_id)) s(scope) WHERE v.status = 'completed' AND {fam:v}
"""

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

ROLLUP_DEEPEST_SQL = f"""
INSERT INTO node_metrics (scope, node, parent, metric, dim, value)
SELECT s.scope, s.node, p.parent, s.metric, s.dim, s.value
FROM ({SUBTREE_SQL.replace("{nodes}", "$1").replace("{scope}", "")}) s
JOIN unnest($1::text[], $2::text[]) p(node, parent) ON p.node = s.node
"""

# A node above the schools: its own leaf rows and its (stored) children's rows.
ROLLUP_SQL = """
INSERT INTO node_metrics (scope, node, parent, metric, dim, value)
SELECT x.scope, x.node, p.parent, x.metric, x.dim, x.value FROM (
  SELECT scope, node, metric, dim, sum(value) AS value FROM (
    SELECT scope, leaf AS node, metric, dim, value FROM leaf_metrics WHERE leaf = ANY($1::text[])
    UNION ALL
    SELECT scope, parent, metric, dim, value FROM node_metrics WHERE parent = ANY($1::text[])
  ) u GROUP BY scope, node, metric, dim HAVING sum(value) <> 0
) x JOIN unnest($1::text[], $2::text[]) p(node, parent) ON p.node = x.node
"""

# Percentiles (hours) per node and scope, over the cases under each node.
EXTRA_SQL = """
INSERT INTO node_extra (scope, node, parent, metric, value)
SELECT s.scope, a.node, '', m.metric, percentile_cont(m.q) WITHIN GROUP (ORDER BY m.h)
FROM cases c
LEFT JOIN findings cf ON cf.finding_id = c.finding_id
CROSS JOIN LATERAL unnest(c.anc) a(node)
CROSS JOIN LATERAL (SELECT '' AS scope UNION ALL SELECT cf.campaign_id WHERE cf.campaign_id IS NOT NULL) s
CROSS JOIN LATERAL (VALUES
    ('finding_to_case_median_hours', 0.5::float8, extract(epoch FROM c.opened_at - c.finding_recorded_at) / 3600),
    ('finding_to_case_p90_hours', 0.9::float8, extract(epoch FROM c.opened_at - c.finding_recorded_at) / 3600),
    ('case_to_contact_median_hours', 0.5::float8, extract(epoch FROM c.first_contact_at - c.opened_at) / 3600),
    ('case_to_contact_p90_hours', 0.9::float8, extract(epoch FROM c.first_contact_at - c.opened_at) / 3600)
) m(metric, q, h)
WHERE m.h IS NOT NULL AND {n}
GROUP BY s.scope, a.node, m.metric, m.q
"""


def _leaf_sqls(full: bool) -> list[str]:
    out = []
    for sql in (LEAF_SQL, LEAF_ENTITY_SQL):
        for alias in "avfcrgosltw":
            sql = sql.replace(f"{{f:{alias}}}", "true" if full else f"{alias}.org_path = ANY($1::text[])")
            sql = sql.replace(f"{{n:{alias}}}", "true" if full else f"{alias}.node = ANY($1::text[])")
        out.append(sql)
    return out


def _entity_sql(full: bool) -> str:
    """Where every entity occurs (full), or the entities in the temp table `marked`."""
    sql = ENTITY_PATHS
    for alias in "av":
        for key, kind in (("t", "teacher"), ("fam", "family")):
            col = f"{alias}.{kind}_id"
            marked = f"{col} IN (SELECT entity_id FROM marked WHERE kind = '{kind}')"
            sql = sql.replace(f"{{{key}:{alias}}}", "true" if full else marked)
    return sql


async def update_figures(conn: asyncpg.Connection, schema: str, *, full: bool = False) -> bool:
    """Recompute figures for what changed (or everything); False when another replica holds the refresh."""
    async with conn.transaction():
        if not await try_xact_lock(conn, f"reporting-refresh:{schema}"):
            return False
        lost = await get_figures_lost(conn)
        if full or lost or await get_many_dirty_leaves(conn):
            # Entity corrections do not depend on leaves: unless they were lost (or a rebuild asks for everything),
            # only the entities marked since the last refresh are redone, as in the incremental path.
            await _refresh_full(conn, all_entities=full or lost)
        else:
            await _refresh_dirty(conn)
        await conn.execute("UPDATE refresh_state SET generation = generation + 1, refreshed_at = now()")
    return True


async def get_many_dirty_leaves(conn: asyncpg.Connection) -> bool:
    """After a large backlog (a fresh consumer group, a long outage, a city-wide campaign) recomputing every leaf
    is cheaper than selecting the dirty ones.

    Marks are appended per transaction, so one leaf is usually marked many times: it is leaves that count.
    """
    n = await conn.fetchval("SELECT count(*) FROM (SELECT DISTINCT path FROM dirty_leaves LIMIT $1) d", FULL_AT)
    return bool(n >= FULL_AT)


async def get_figures_lost(conn: asyncpg.Connection) -> bool:
    """The figures are unlogged tables: empty after a database crash while the facts are not."""
    return bool(
        await conn.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM node_metrics)"
            " AND (EXISTS (SELECT 1 FROM org_units) OR EXISTS (SELECT 1 FROM visits) OR EXISTS (SELECT 1 FROM cases))"
        )
    )


async def _refresh_dirty(conn: asyncpg.Connection) -> None:
    # Marks are appended per event (a launch: one per assignment): only the distinct leaves come back to Python.
    leaves = {
        r["path"]
        for r in await conn.fetch("WITH d AS (DELETE FROM dirty_leaves RETURNING path) SELECT DISTINCT path FROM d")
    }
    leaves |= await _refresh_entities(conn)
    if not leaves:
        return
    leaf_list = sorted(leaves)
    await conn.execute("DELETE FROM leaf_metrics WHERE leaf = ANY($1::text[])", leaf_list)
    for sql in _leaf_sqls(False):
        await conn.execute(sql, leaf_list)
    nodes = {a for leaf in leaves for a in ancestors(leaf)}
    await _rollup(conn, nodes)
    node_list = sorted(nodes)
    await conn.execute("DELETE FROM node_extra WHERE node = ANY($1::text[])", node_list)
    await conn.execute(EXTRA_SQL.replace("{n}", "c.anc && $1::text[] AND a.node = ANY($1::text[])"), node_list)


async def _refresh_entities(conn: asyncpg.Connection) -> set[str]:
    """Redo the corrections of the teachers and families marked since the last refresh; the nodes where they
    changed. Only rows that differ are written."""
    await conn.execute(
        "CREATE TEMP TABLE marked (kind text, entity_id text) ON COMMIT DROP;"
        " CREATE TEMP TABLE new_corrections (LIKE entity_corrections) ON COMMIT DROP"
    )
    n = await conn.fetchval(
        "WITH d AS (DELETE FROM dirty_entities RETURNING kind, entity_id),"
        " i AS (INSERT INTO marked SELECT DISTINCT kind, entity_id FROM d RETURNING 1) SELECT count(*) FROM i"
    )
    if not n:
        return set()
    await conn.execute("ANALYZE marked")
    await _write_corrections(conn, _entity_sql(False), "new_corrections")
    rows = await conn.fetch(
        """WITH gone AS (
            DELETE FROM entity_corrections w USING marked m
            WHERE w.kind = m.kind AND w.entity_id = m.entity_id AND NOT EXISTS (
                SELECT 1 FROM new_corrections n WHERE (n.kind, n.entity_id, n.scope, n.metric, n.node, n.weight)
                    = (w.kind, w.entity_id, w.scope, w.metric, w.node, w.weight))
            RETURNING w.node
        ), came AS (
            INSERT INTO entity_corrections SELECT n.* FROM new_corrections n WHERE NOT EXISTS (
                SELECT 1 FROM entity_corrections w WHERE (w.kind, w.entity_id, w.scope, w.metric, w.node, w.weight)
                    = (n.kind, n.entity_id, n.scope, n.metric, n.node, n.weight))
            RETURNING node
        )
        SELECT node FROM gone UNION SELECT node FROM came"""
    )
    return {r["node"] for r in rows}


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


async def _refresh_full(conn: asyncpg.Connection, *, all_entities: bool) -> None:
    steps: list[tuple[str, float]] = []
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps.append((name, now - t))
        t = now

    if not all_entities:
        await conn.execute("TRUNCATE dirty_leaves, leaf_metrics, node_metrics, node_extra")
        await _refresh_entities(conn)
    else:
        await conn.execute(
            "TRUNCATE dirty_leaves, dirty_entities, entity_corrections, leaf_metrics, node_metrics, node_extra"
        )
        await _write_corrections(conn, _entity_sql(True), "entity_corrections")
    step("entity corrections")
    for sql in _leaf_sqls(True):
        await conn.execute(sql)
    step("leaf figures")
    leaves = [r["leaf"] for r in await conn.fetch("SELECT DISTINCT leaf FROM leaf_metrics")]
    await _rollup(conn, {a for leaf in leaves for a in ancestors(leaf)})
    step("roll-up")
    await conn.execute(EXTRA_SQL.replace("{n}", "true"))
    step("percentiles")
    log.info("full refresh: %s", ", ".join(f"{n} {s:.1f}s" for n, s in steps))

"""Refresh of the materialised figures: dirty leaves → leaf_metrics → node_metrics rolled up to the city."""

from __future__ import annotations

import logging
import time

import asyncpg

from services.reporting.domain.entities import weights
from shared.db import lock_key

log = logging.getLogger(__name__)
FULL_AT = 3000  # dirty leaves from which a full refresh is cheaper than an incremental one
TZ = "Asia/Shanghai"  # the bureau's calendar day

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
        ('cases_overdue', '', c.state = 'open' AND c.first_contact_at IS NULL AND c.first_contact_due < now()),
        ('cases_opened_daily', (c.opened_at AT TIME ZONE '{TZ}')::date::text, c.opened_at IS NOT NULL),
        ('cases_closed_daily', (c.closed_at AT TIME ZONE '{TZ}')::date::text, c.state = 'closed')
    ) m(metric, dim, ok)
    WHERE m.ok AND {{f:c}}
  UNION ALL
  SELECT rf.campaign_id, r.org_path, 'referrals', r.department || '|' || r.state, 1
    FROM referrals r LEFT JOIN cases rc ON rc.case_id = r.case_id
    LEFT JOIN findings rf ON rf.finding_id = rc.finding_id
    WHERE {{f:r}}
  UNION ALL
  SELECT NULL, g.org_path, 'special_group', g.grp, 1
    FROM (SELECT DISTINCT org_path, student_id, grp FROM memberships g
          WHERE g.verified IS DISTINCT FROM false AND {{f:g}}) g
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
  SELECT NULL, a.org_path, 'attendance_present', '', count(*) FROM attendance a WHERE a.attended AND {{f:a}}
    GROUP BY 2
  UNION ALL
  SELECT NULL, t.org_path, 'teams', '', 1 FROM teams t WHERE {{f:t}}
  UNION ALL
  SELECT NULL, t.org_path, 'team_members', t.role, 1 FROM team_members t
    WHERE t.active AND t.role IS NOT NULL AND {{f:t}}
  UNION ALL
  SELECT NULL, l.org_path, m.metric, l.topic, m.v
    FROM lectures l CROSS JOIN LATERAL (VALUES ('lectures', 1), ('lecture_audience', l.headcount)) m(metric, v)
    WHERE {{f:l}}
) x
GROUP BY GROUPING SETS ((campaign_id, leaf, metric, dim), (leaf, metric, dim))
HAVING GROUPING(campaign_id) = 1 OR campaign_id IS NOT NULL
"""

# Distinct teachers and families per leaf, from their weights (already per scope).
LEAF_ENTITY_SQL = """
INSERT INTO leaf_metrics (scope, leaf, metric, dim, value)
SELECT w.scope, w.node, w.metric, '', sum(w.weight) FROM entity_weights w WHERE {n:w}
GROUP BY 1, 2, 3 HAVING sum(w.weight) <> 0
"""

# Where each distinct entity occurs: (kind, entity, scope, metric, path), for the entities in $1/$2.
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

FACT_TABLES = (
    "org_units",
    "assignments",
    "visits",
    "findings",
    "memberships",
    "cases",
    "referrals",
    "committees",
    "sessions",
    "attendance",
    "teams",
    "team_members",
    "lectures",
)


def _leaf_sqls(full: bool) -> list[str]:
    out = []
    for sql in (LEAF_SQL, LEAF_ENTITY_SQL):
        for alias in "avfcrgosltw":
            sql = sql.replace(f"{{f:{alias}}}", "true" if full else f"{alias}.org_path = ANY($1::text[])")
            sql = sql.replace(f"{{n:{alias}}}", "true" if full else f"{alias}.node = ANY($1::text[])")
        out.append(sql)
    return out


def _entity_sql(full: bool) -> str:
    sql = ENTITY_PATHS
    for alias in "av":
        sql = sql.replace(f"{{t:{alias}}}", "true" if full else f"{alias}.teacher_id = ANY($1::text[])")
        sql = sql.replace(f"{{fam:{alias}}}", "true" if full else f"{alias}.family_id = ANY($2::text[])")
    return sql


def parent_of(path: str) -> str:
    """The parent path ('' for the root)."""
    return path.rsplit("/", 1)[0] if path.count("/") > 1 else ""


def ancestors(path: str) -> list[str]:
    """Every prefix of a path, the root first."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


async def refresh(conn: asyncpg.Connection, schema: str, *, full: bool = False, overdue_sweep: bool = False) -> bool:
    """Recompute figures for what changed (or everything); False when another replica holds the refresh."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(f"reporting-refresh:{schema}")):
            return False
        lost = await figures_lost(conn)
        if full or lost or await many_dirty_leaves(conn):
            # Entity weights do not depend on leaves: unless they were lost (or a rebuild asks for everything),
            # only the entities marked since the last refresh are redone, as in the incremental path.
            await _refresh_full(conn, all_entities=full or lost)
        else:
            await _refresh_dirty(conn, overdue_sweep=overdue_sweep)
        await conn.execute("UPDATE refresh_state SET generation = generation + 1, refreshed_at = now()")
    return True


async def many_dirty_leaves(conn: asyncpg.Connection) -> bool:
    """After a large backlog (a fresh consumer group, a long outage, a city-wide campaign) recomputing every leaf
    is cheaper than selecting the dirty ones.

    Marks are appended per transaction, so one leaf is usually marked many times: it is leaves that count.
    """
    n = await conn.fetchval("SELECT count(*) FROM (SELECT DISTINCT path FROM dirty_leaves LIMIT $1) d", FULL_AT)
    return bool(n >= FULL_AT)


async def figures_lost(conn: asyncpg.Connection) -> bool:
    """The figures are unlogged tables: empty after a database crash while the facts are not."""
    return bool(
        await conn.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM node_metrics)"
            " AND (EXISTS (SELECT 1 FROM org_units) OR EXISTS (SELECT 1 FROM visits) OR EXISTS (SELECT 1 FROM cases))"
        )
    )


async def _refresh_dirty(conn: asyncpg.Connection, *, overdue_sweep: bool) -> None:
    leaves = {r["path"] for r in await conn.fetch("DELETE FROM dirty_leaves RETURNING path")}
    if overdue_sweep:  # overdue depends on the clock: recount leaves with cases waiting for a first contact
        leaves |= {
            r["org_path"]
            for r in await conn.fetch(
                "SELECT DISTINCT org_path FROM cases WHERE state = 'open' AND first_contact_at IS NULL"
            )
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
    """Redo the weights of the teachers and families marked since the last refresh; the nodes they left or reach."""
    ents = await conn.fetch("DELETE FROM dirty_entities RETURNING kind, entity_id")
    if not ents:
        return set()
    teachers = list({r["entity_id"] for r in ents if r["kind"] == "teacher"})
    families = list({r["entity_id"] for r in ents if r["kind"] == "family"})
    old = await conn.fetch(
        "DELETE FROM entity_weights WHERE (kind = 'teacher' AND entity_id = ANY($1::text[]))"
        " OR (kind = 'family' AND entity_id = ANY($2::text[])) RETURNING node",
        teachers,
        families,
    )
    groups = await conn.fetch(
        f"SELECT kind, entity_id, scope, metric, array_agg(path) AS paths FROM ({_entity_sql(False)}) p"
        " GROUP BY 1, 2, 3, 4",
        teachers,
        families,
    )
    return {r["node"] for r in old} | await _write_weights(conn, groups)


async def _write_weights(conn: asyncpg.Connection, groups: list[asyncpg.Record]) -> set[str]:
    """Store the weights of each (entity, scope, metric) from the paths it occurs at; the nodes written."""
    out = [
        (g["kind"], g["entity_id"], g["scope"], g["metric"], node, w)
        for g in groups
        for node, w in weights(g["paths"]).items()
    ]
    if out:
        await conn.copy_records_to_table(
            "entity_weights", records=out, columns=["kind", "entity_id", "scope", "metric", "node", "weight"]
        )
    return {r[4] for r in out}


async def _rollup(conn: asyncpg.Connection, nodes: set[str]) -> None:
    """Recompute the given nodes deepest first, each from its own leaf rows and its children's rows."""
    by_depth: dict[int, list[str]] = {}
    for n in nodes:
        by_depth.setdefault(n.count("/"), []).append(n)
    for depth in sorted(by_depth, reverse=True):
        batch = sorted(by_depth[depth])
        await conn.execute("DELETE FROM node_metrics WHERE node = ANY($1::text[])", batch)
        await conn.execute(ROLLUP_SQL, batch, [parent_of(n) for n in batch])


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
            "TRUNCATE dirty_leaves, dirty_entities, entity_weights, leaf_metrics, node_metrics, node_extra"
        )
        # Most entities occur at one path (weight 1 there): written in SQL; only the others go through Python.
        await conn.execute(f"CREATE TEMP TABLE entity_paths ON COMMIT DROP AS {_entity_sql(True)}")
        await conn.execute(
            "INSERT INTO entity_weights (kind, entity_id, scope, metric, node, weight)"
            " SELECT kind, entity_id, scope, metric, min(path), 1 FROM entity_paths GROUP BY 1, 2, 3, 4"
            " HAVING min(path) = max(path)"
        )
        multi = await conn.fetch(
            "SELECT kind, entity_id, scope, metric, array_agg(path) AS paths FROM entity_paths"
            " GROUP BY 1, 2, 3, 4 HAVING min(path) <> max(path)"
        )
        await _write_weights(conn, multi)
    step("entity weights")
    for sql in _leaf_sqls(True):
        await conn.execute(sql)
    step("leaf figures")
    leaves = [r["leaf"] for r in await conn.fetch("SELECT DISTINCT leaf FROM leaf_metrics")]
    await _rollup(conn, {a for leaf in leaves for a in ancestors(leaf)})
    step("roll-up")
    await conn.execute(EXTRA_SQL.replace("{n}", "true"))
    step("percentiles")
    log.info("full refresh: %s", ", ".join(f"{n} {s:.1f}s" for n, s in steps))


async def pending(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """How many dirty leaves and entities wait for the next refresh."""
    return int(
        await conn.fetchval("SELECT (SELECT count(*) FROM dirty_leaves) + (SELECT count(*) FROM dirty_entities)")
    )

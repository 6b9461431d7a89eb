"""The refresh folds deltas into the figures exactly as a full recompute would give them, and recomputes figures a
database crash emptied."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from services.reporting.domain.figures import HOUR_METRICS, hour_percentiles
from services.reporting.domain.projection import project
from services.reporting.handlers import handlers
from services.reporting.settings import ReportingSettings
from services.reporting.store.facts import upsert_facts
from services.reporting.store.reads import list_node_metrics
from services.reporting.store.refresh import (
    DELTA_SETTINGS,
    LOGGED,
    SUBTREE_SQL,
    _entity_sql,
    campaign_sql,
    get_figures_lost,
    update_figures,
)
from services.reporting.store.schemas import bulk_load
from shared import db
from shared.events import registry
from shared.testing.plans import nodes
from tests.integration.reporting.scenario import (
    CAMPAIGN,
    D1,
    D2,
    S1,
    S1C1,
    S1C2,
    S1G1,
    S2C1,
    S2G1,
    S3,
    S3C1,
    S3G1,
    all_events,
)

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "reporting" / "migrations"


@pytest.fixture
async def schema(make_settings: Any) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A migrated reporting schema without the service (no refresher racing the test) and a connection to it."""
    settings = make_settings(ReportingSettings)
    pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=1)
    try:
        await db.migrate(settings.database_url, settings.db_schema, db.KIT_MIGRATIONS, MIGRATIONS)
        handlers()  # registers the contracts
        async with pool.acquire() as conn:
            yield settings.db_schema, conn
    finally:
        await pool.close()


# Paths a mutated event may move to: leaves at every depth, two districts, a path outside the scenario.
MOVES = [S1C1, S1C2, S2C1, S3C1, S1G1, S1, S3, D1, f"{D2}/s9/g9/c9"]
SHIFTS = ("occurred_at", "recorded_at", "finding_recorded_at", "contacted_at")


def _mutated(rng: random.Random, p: BaseModel) -> BaseModel:
    """The same fact seen again, later or earlier, at another path (a child moving, a late correction)."""
    update: dict[str, Any] = {}
    if getattr(p, "org_path", None):
        update["org_path"] = rng.choice(MOVES)
    for field in SHIFTS:
        if getattr(p, field, None) is not None:
            update[field] = getattr(p, field) + timedelta(hours=rng.choice([-30, -1, 0, 1, 30]))
    return p.model_copy(update=update)


def _history(seed: int) -> list[BaseModel]:
    """The scenario's events shuffled (late and out of order), some delivered twice, some seen again mutated."""
    rng = random.Random(seed)
    events = all_events()
    extra = [rng.choice(events) for _ in range(len(events) // 4)]
    extra += [_mutated(rng, rng.choice(events)) for _ in range(len(events) // 2)]
    events = events + extra
    rng.shuffle(events)
    return events


async def _figures(conn: asyncpg.Connection) -> dict[str, set[tuple[Any, ...]]]:
    return {
        "node_metrics": {tuple(r) for r in await conn.fetch("SELECT * FROM node_metrics")},
        # A full recompute also writes sums that come to 0 (a session with nobody enrolled); no read sees them.
        "leaf_metrics": {tuple(r) for r in await conn.fetch("SELECT * FROM leaf_metrics WHERE value <> 0")},
    }


Check = Callable[[], Awaitable[None]]


async def _apply_live(
    conn: asyncpg.Connection,
    name: str,
    rng: random.Random,
    events: list[BaseModel],
    *,
    after_batch: Check | None = None,
    after_refresh: Check | None = None,
) -> int:
    """The events applied as the live consumer does, in random batches of 1–12, each batch's facts in one
    transaction, with a refresh by deltas after some batches and after the last; the checks run after each batch
    (before any refresh) and after each refresh. Returns how many refreshes ran."""
    refreshes = 0
    while events:
        size = rng.randint(1, 12)
        batch, events = events[:size], events[size:]
        ops = [op for p in batch for op in project(registry.spec_for(p).type, p)]
        async with conn.transaction():
            await upsert_facts(conn, ops)
        if after_batch:
            await after_batch()
        if rng.random() < 0.4 or not events:
            assert await update_figures(conn, name)
            refreshes += 1
            if after_refresh:
                await after_refresh()
    return refreshes


@pytest.mark.parametrize("seed", range(16))
async def test_refresh_by_deltas_equals_a_full_recompute_on_random_histories(schema, seed):
    """Random event sequences (out of order, redelivered, facts moving between leaves, cases closed and reopened,
    memberships moving and ending), applied in random batches with a refresh after some of them: the figures folded
    by deltas are exactly those recomputed from the facts."""
    name, conn = schema
    refreshes = await _apply_live(conn, name, random.Random(seed), _history(seed))
    incremental = await _figures(conn)
    assert await update_figures(conn, name, full=True)
    full = await _figures(conn)
    hours = {r[3] for r in full["node_metrics"] if r[3] in ("finding_to_case_hours", "case_to_contact_hours")}
    assert len(full["node_metrics"]) > 200 and hours == {"finding_to_case_hours", "case_to_contact_hours"}
    assert refreshes > 3
    for table in full:
        assert incremental[table] - full[table] == set(), table
        assert full[table] - incremental[table] == set(), table
    # Nothing left to fold: another refresh changes nothing.
    assert await update_figures(conn, name)
    assert await _figures(conn) == full


# Grades and classes (not stored: summed when read), including a path without an org unit.
DEEP = [S1G1, S1C1, S1C2, S2G1, S2C1, S3G1, S3C1, f"{D2}/s9/g9", f"{D2}/s9/g9/c9"]
SCOPES = ["", CAMPAIGN]
# The same figures from scratch: every leaf row under the node plus the campaign facts' figures of every fact under it.
_FROM_FACTS = campaign_sql(
    {t: f"(SELECT t.*, 1 AS sg FROM {t} t)" for t in ("assignments", "visits", "findings")}, all_campaigns=True
)
DEEP_FROM_SCRATCH_SQL = f"""
SELECT node, scope, metric, dim, sum(value) FROM (
  {SUBTREE_SQL.replace("{nodes}", "$1").replace("{scope}", "")}
  UNION ALL
  SELECT p.node, c.scope, c.metric, c.dim, c.v FROM ({_FROM_FACTS}) c
  JOIN unnest($1::text[]) p(node) ON c.leaf = p.node OR c.leaf LIKE p.node || '/%'
) x GROUP BY 1, 2, 3, 4 HAVING sum(value) <> 0
"""


async def _deep_reads(conn: asyncpg.Connection) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
    return {k: v for k, v in (await list_node_metrics(conn, DEEP, SCOPES)).items() if v}


@pytest.mark.parametrize("seed", range(8))
async def test_grade_and_class_reads_are_the_last_refreshs_figures(schema, seed):
    """A grade's or class's campaign figures are summed from its facts when read: right after a refresh they are
    those of every fact under it, and until the next refresh they stay what that refresh saw (the changes not yet
    folded are taken out), as the stored schools' figures do."""
    name, conn = schema
    assert await update_figures(conn, name)
    seen = await _deep_reads(conn)

    async def unchanged() -> None:
        assert await _deep_reads(conn) == seen  # not refreshed yet: the last refresh's figures

    async def from_scratch() -> None:
        nonlocal seen
        seen = await _deep_reads(conn)
        scratch: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
        slots: dict[tuple[str, str, str], dict[float, float]] = {}
        for r in await conn.fetch(DEEP_FROM_SCRATCH_SQL, DEEP):
            if r["scope"] not in SCOPES:
                continue
            if r["metric"] in HOUR_METRICS:  # read as their median and p90
                slots.setdefault((r["node"], r["scope"], r["metric"]), {})[float(r["dim"])] = float(r["sum"])
            else:
                scratch.setdefault((r["node"], r["scope"]), {})[(r["metric"], r["dim"])] = float(r["sum"])
        for (node, scope, metric), counts in slots.items():
            for q, v in hour_percentiles(counts).items():
                if v is not None:
                    scratch.setdefault((node, scope), {})[(metric, q)] = v
        assert seen == scratch

    checked = await _apply_live(
        conn, name, random.Random(seed), _history(seed), after_batch=unchanged, after_refresh=from_scratch
    )
    assert checked > 3 and any(m[0] == "visits_completed" for v in seen.values() for m in v)


@pytest.mark.parametrize("seed", range(100, 106))
async def test_deltas_after_a_rebuilds_bulk_load_equal_a_full_recompute(schema, seed):
    """As a rebuild does it: part of a history loaded in bulk (no bookkeeping, the log triggers off, the indexes
    built afterwards) and refreshed in full, then the rest applied live with refreshes by deltas: the figures are
    those a full recompute gives."""
    name, conn = schema
    rng = random.Random(seed)
    events = _history(seed)
    cut = rng.randint(len(events) // 4, 3 * len(events) // 4)
    async with bulk_load(conn, name):
        for i in range(0, cut, 50):
            ops = [op for p in events[i : min(i + 50, cut)] for op in project(registry.spec_for(p).type, p)]
            async with conn.transaction():
                await upsert_facts(conn, ops, track=False)
        logged = await conn.fetchval("SELECT " + " + ".join(f"(SELECT count(*) FROM {t}_log)" for t in LOGGED))
        assert logged == 0  # nothing logged while the full refresh that follows recomputes anyway
    assert await update_figures(conn, name, full=True)
    refreshes = await _apply_live(conn, name, rng, events[cut:])
    incremental = await _figures(conn)
    assert await update_figures(conn, name, full=True)
    full = await _figures(conn)
    assert len(full["node_metrics"]) > 200 and refreshes > 1  # one by deltas before the last, at least
    for table in full:
        assert incremental[table] == full[table], table


async def test_figures_lost_in_a_database_crash_are_recomputed_in_full(schema):
    name, conn = schema
    # The derived figures skip the WAL: PostgreSQL empties them after a crash, the facts stay.
    persistence = await conn.fetch(
        "SELECT relname, relpersistence::text FROM pg_class WHERE relnamespace = $1::regnamespace"
        " AND relname IN ('leaf_metrics', 'node_metrics', 'entity_corrections', 'visits')",
        name,
    )
    assert {r["relname"]: r["relpersistence"] for r in persistence} == {
        "leaf_metrics": "u",
        "node_metrics": "u",
        "entity_corrections": "u",
        "visits": "p",
    }
    await conn.execute("INSERT INTO org_units VALUES ('620402', '/620400/620402', 'district', '白银区', now())")
    assert await get_figures_lost(conn)  # facts, no figures yet
    assert await update_figures(conn, name)
    assert await conn.fetchval("SELECT count(*) FROM node_metrics WHERE node = '/620400'") > 0
    assert not await get_figures_lost(conn)
    await conn.execute("TRUNCATE leaf_metrics, node_metrics, entity_corrections")  # as after a crash
    assert await get_figures_lost(conn)
    assert await update_figures(conn, name)
    assert await conn.fetchval("SELECT count(*) FROM node_metrics WHERE node = '/620400'") > 0


async def test_a_refresh_finds_the_marked_families_visits_through_their_index(schema):
    """The entity corrections of a refresh by deltas read the visits of the few thousand families it marked, out of
    the city's hundreds of thousands: through the family index, not by reading every visit (which the planner chose
    at the default random_page_cost: ~120 ms a table at the full city)."""
    _, conn = schema
    await conn.execute(
        "INSERT INTO visits (visit_id, campaign_id, assignment_id, teacher_id, family_id, org_path, status,"
        " occurred_at, rank, yes_items) SELECT 'v' || i, 'c1', 'a' || i, 't' || (i % 1500), 'f' || i,"
        " '/620400/620402/s' || (i % 300) || '/g1/c' || (i % 7), 'completed', now(), 1,"
        " array(SELECT 'item_' || j FROM generate_series(1, 12) j) FROM generate_series(1, 60000) i"
    )
    await conn.execute("ANALYZE visits")
    async with conn.transaction():
        await conn.execute(DELTA_SETTINGS)
        await conn.execute("CREATE TEMP TABLE marked (kind text, metric text, entity_id text) ON COMMIT DROP")
        await conn.execute(
            "INSERT INTO marked SELECT 'family', 'families_visited', 'f' || i FROM generate_series(1, 60000, 60) i"
        )  # 1,000 of 60,000
        await conn.execute("ANALYZE marked")
        plan = (await conn.fetchval(f"EXPLAIN (FORMAT JSON) {_entity_sql(False)}"))[0]["Plan"]  # the json codec
    scans = {(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes(plan)}
    assert ("Seq Scan", "visits", None) not in scans, scans
    assert any(kind.startswith("Index") and index == "visits_family" for kind, _, index in scans), scans

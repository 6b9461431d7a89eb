"""A rebuild whose partitions are replayed by two processes builds the same read models as one process."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.reporting.settings import ReportingSettings
from services.reporting.usecases.rebuild import lanes, rebuild
from tests.integration.reporting import scenario

pytestmark = pytest.mark.integration
# Tables that hold when the schema was built (a migration's or the refresh's time), not what was replayed.
WHEN_BUILT = {"schema_migrations", "refresh_state"}


async def tables(db: asyncpg.Connection, schema: str) -> dict[str, list[str]]:
    """Every table of `schema` as its rows' text, sorted (the facts, the figures, the offsets)."""
    names = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    out: dict[str, list[str]] = {}
    for (name,) in names:
        rows = await db.fetch(f'SELECT t::text AS row FROM "{schema}"."{name}" t')
        out[name] = sorted(r["row"] for r in rows)
    return out


async def test_a_replay_split_between_two_processes_builds_the_same_read_models(make_settings: Any, stack: Any):
    settings = make_settings(ReportingSettings)
    await scenario.ensure_topics(settings)  # 3 partitions per topic: the lanes share the topics' partitions
    # Every event twice, as after a redelivery: the merges see each key again in a later batch or round.
    messages = scenario.envelopes(scenario.all_events())
    await scenario.publish(settings, messages + messages)
    db = await asyncpg.connect(stack.database_url)
    one, two = f"{settings.db_schema}_one", f"{settings.db_schema}_two"
    try:
        single = await rebuild(settings, swap=False, target=one, processes=1)
        split = await rebuild(settings, swap=False, target=two, processes=2)
        assert (single.processes, split.processes) == (1, 2)
        assert single.events == split.events == 2 * len(scenario.on_read_topics(messages))
        assert single.skipped == split.skipped == 0
        assert split.positions == single.positions

        built, built_split = await tables(db, one), await tables(db, two)
        assert built.keys() == built_split.keys()
        for name in ("org_units", "assignments", "visits", "findings", "cases", "attendance", "rebuild_offsets"):
            assert built[name], name  # the scenario reaches every kind of fact
        differ = {n: rows for n, rows in built_split.items() if rows != built[n] and n not in WHEN_BUILT}
        assert differ == {}
    finally:
        for schema in (one, two):
            await db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await db.close()


def test_lanes_share_the_records_evenly_and_keep_every_partition_once():
    sizes = {TopicPartition("a", p): n for p, n in enumerate([100, 90, 10, 0])} | {TopicPartition("b", 0): 5}
    split = lanes(sizes, 2)
    assert sorted((tp for lane in split for tp in lane), key=str) == sorted(sizes, key=str)
    assert [sum(sizes[tp] for tp in lane) for lane in split] == [105, 100]
    assert lanes(sizes, 1) == [sorted(sizes, key=lambda tp: (-sizes[tp], tp.topic, tp.partition))]
    assert lanes({TopicPartition("a", 0): 7, TopicPartition("a", 1): 0}, 2) == [
        [TopicPartition("a", 0), TopicPartition("a", 1)]
    ]

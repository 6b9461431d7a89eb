"""Pure kit rules for faults: which database errors are transient, and the Kafka durability settings."""

from __future__ import annotations

import asyncpg
import pytest

from shared import db, kafka
from shared.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    service_name = "demo"


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.SerializationError("could not serialize access"),  # 40001
        asyncpg.DeadlockDetectedError("deadlock detected"),  # 40P01
        asyncpg.LockNotAvailableError("could not obtain lock"),  # 55P03
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
        asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),  # 57P02
        asyncpg.CannotConnectNowError("the database system is starting up"),  # 57P03
        asyncpg.ConnectionFailureError("connection failure"),  # 08006
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),  # 08003
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.InterfaceError("connection is closed"),
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
    ],
)
def test_transient_database_errors(exc: BaseException) -> None:
    assert db.is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.ForeignKeyViolationError("violates foreign key"),
        asyncpg.UndefinedTableError("relation does not exist"),
        asyncpg.DataError("invalid input syntax"),
        ValueError("handler bug"),
        RuntimeError("handler refuses"),
    ],
)
def test_deterministic_errors_are_not_transient(exc: BaseException) -> None:
    assert not db.is_transient(exc)


def test_timeouts_are_told_apart_from_other_transient_errors() -> None:
    assert db.is_timeout(asyncpg.QueryCanceledError("statement timeout"))
    assert db.is_timeout(TimeoutError())
    assert not db.is_timeout(asyncpg.DeadlockDetectedError("deadlock"))


def test_declared_topics_take_min_insync_replicas_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "2")
    spec = kafka.topic_spec(DemoSettings(), "visits.visit.events")
    assert (spec.replication, spec.min_insync_replicas) == (3, 2)
    assert spec.configs() == {"retention.ms": "-1", "min.insync.replicas": "2"}
    assert kafka.topic_spec(DemoSettings(), "x.dlt", partitions=1).partitions == 1


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    with pytest.raises(ValueError, match="topic_min_insync"):
        DemoSettings(topic_replication=1, topic_min_insync=2)
    assert DemoSettings().topic_min_insync == 1


async def test_producers_wait_for_all_in_sync_replicas_and_are_idempotent() -> None:
    producer = kafka.producer("127.0.0.1:1", client_id="t")  # not started: nothing connects
    assert producer._sender._acks == -1  # acks=all
    assert producer._txn_manager is not None  # idempotence: a producer id and sequence numbers per partition

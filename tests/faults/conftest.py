"""Infrastructure of their own for the fault drills that kill it: a Kafka broker or a PostgreSQL server started
by devstack in a folder of its own on free ports, so the stack the other tests share is never touched."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.devstack import kafka as devstack_kafka
from shared.devstack import state_dir
from shared.devstack.kafka import Kafka
from shared.devstack.postgres import Postgres
from shared.testing.fixtures import free_port


def free_port_block(n: int) -> int:
    """The first of `n` consecutive free ports (a broker listens on two: clients and its controller)."""
    while True:
        port = free_port()
        if port + n <= 65536 and all(port_is_free(p) for p in range(port + 1, port + n)):
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def own_home() -> Iterator[Path]:
    """A state folder for this test's own infrastructure (under the devstack folder: the PostgreSQL service
    account can enter it)."""
    home = state_dir() / f"faults-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def own_kafka(own_home: Path) -> Iterator[Kafka]:
    """A single-node Kafka broker of this test's own."""
    kafka = Kafka(own_home, free_port_block(12))  # clients, controller, department listener at +10
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def own_postgres(own_home: Path) -> Iterator[Postgres]:
    """A PostgreSQL server of this test's own."""
    postgres = Postgres(own_home, free_port())
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()


@pytest.fixture
def own_cluster(own_home: Path) -> Iterator[Any]:
    """Three KRaft nodes of this test's own (each broker and controller), from devstack's KafkaCluster."""
    cluster_class = getattr(devstack_kafka, "KafkaCluster", None)
    if cluster_class is None:
        pytest.skip("needs shared.devstack.kafka.KafkaCluster (devstack --brokers 3)")
    cluster = cluster_class(own_home, free_port_block(16), nodes=3)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()

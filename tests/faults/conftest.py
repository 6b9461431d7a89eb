"""Infrastructure of their own for the fault drills that kill it: a Kafka broker or a PostgreSQL server started
by devstack in a folder of its own on free ports, so the stack the other tests share is never touched."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.devstack import state_dir
from shared.devstack.kafka import Kafka
from shared.devstack.postgres import Postgres
from shared.testing.fixtures import free_port


def free_port_pair() -> int:
    """A free port whose next port is free too (a broker listens on both: clients and its controller)."""
    while True:
        port = free_port()
        if port < 65535 and free_port_is(port + 1):
            return port


def free_port_is(port: int) -> bool:
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
    kafka = Kafka(own_home, free_port_pair())
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

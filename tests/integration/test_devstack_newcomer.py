"""A newcomer's first `make demo`: a clone under /root as root, and a start that fails half-way."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from shared.devstack import DevstackError, Stack
from shared.devstack.postgres import Postgres, cluster_home

pytestmark = pytest.mark.integration


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to a service account")
def test_a_state_folder_the_service_account_cannot_enter_moves_the_cluster_out(tmp_path: Path) -> None:
    private = tmp_path / "home"  # like /root: mode 700
    private.mkdir(mode=0o700)
    state = private / "clone" / ".devstack"
    home = cluster_home(state)
    assert home != state and home.parent == Path("/var/tmp")
    assert cluster_home(state) == home, "the same folder on every run, so the cluster is found again"
    assert Postgres(state, 1).data == home / "postgres" / "data"
    reachable = Path("/var/tmp/some-clone/.devstack")  # every parent enterable by others
    assert cluster_home(reachable) == reachable


def test_up_that_fails_stops_what_it_started(tmp_path: Path) -> None:
    stack = Stack.on_free_ports(tmp_path / "stack")
    postgres = stack.postgres()
    # Kafka's port is taken, so its start fails while PostgreSQL starts beside it (the other way round, a broker
    # was left running and blocked the next try).
    try:
        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taken.bind(("127.0.0.1", stack.kafka_port))
            taken.listen()
            with pytest.raises(DevstackError, match="kafka"):
                stack.up()
        assert postgres.pid() is None, "the PostgreSQL this call started is stopped again"
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", stack.pg_port))  # free for the next try
    finally:
        postgres.stop()
        shutil.rmtree(cluster_home(stack.state), ignore_errors=True)

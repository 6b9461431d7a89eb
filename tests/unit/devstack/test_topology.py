"""Devstack topology rules: broker config for one node and for a cluster, process names, replica ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.devstack import DevstackError, KafkaNode, Stack, Topology
from shared.devstack.kafka import broker_properties


def test_single_broker_config_keeps_everything_at_one_replica() -> None:
    props = broker_properties(1, 9092, {1: 9093}, Path("/d"))

    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,DEPARTMENTS://127.0.0.1:9102"  # SASL/SCRAM at +10
    )
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_cluster_config_replicates_internal_topics_three_ways_with_min_isr_two() -> None:
    voters = {1: 9093, 2: 9095, 3: 9097}

    props = broker_properties(2, 9094, voters, Path("/d"))

    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095,DEPARTMENTS://127.0.0.1:9104")
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert props[key] == "3"
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"


def test_processes_are_named_by_replica_and_broker(tmp_path: Path) -> None:
    stack = Stack(tmp_path, kafka_port=30000, http_ports={"committees": 1, "visits": 2, "outreach": 3, "reporting": 4})
    stack._remember(Topology(brokers=3, replicas=2))

    node = stack.process("kafka#3")
    visits2 = stack.process("visits#2")

    assert isinstance(node, KafkaNode) and node.port == 30004 and node.voters[3] == 30005
    assert stack.process("visits").address == "http://127.0.0.1:2"  # plain name: replica 1
    assert visits2.address == "http://127.0.0.1:12"
    assert stack.info().kafka_bootstrap == "127.0.0.1:30000,127.0.0.1:30002,127.0.0.1:30004"
    assert stack.info().env()["KAFKA_TOPIC_REPLICATION_FACTOR"] == "3"
    with pytest.raises(DevstackError):
        stack.process("kafka#4")


def test_topology_refuses_two_brokers() -> None:
    with pytest.raises(DevstackError):
        Topology(brokers=2)

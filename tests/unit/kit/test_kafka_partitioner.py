"""The relay's partitioner hashes keys exactly as the Kafka clients do (aiokafka's reference implementation)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from shared import kafka


def test_partitions_match_the_clients_for_keys_of_every_length() -> None:
    rng = random.Random(5)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(0, 80) for _ in range(20)]
    keys += [f"student-{i}".encode() for i in range(500)] + ["学生-一".encode()]
    partitions = [0, 1, 2, 3, 4, 5]
    for key in keys:
        assert kafka.partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions), key

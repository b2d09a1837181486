"""A gateway that partitions with librdkafka's default (CRC32) instead of murmur2.

Its orders land, for most accounts, on another partition than the accounts'
logins: a worker would see orders from sessions it never saw opened. The engine
checks each record's key against its partition and dead-letters the strays with
the fix in the reason; the rest are decided as usual.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from streams.codec import encode_value
from streams.partitioning import home_partition
from tests.faults.helpers import login, metric, order, wait_until
from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker


def test_records_off_their_murmur2_partition_are_deadlettered(engine_settings, start_worker):
    settings = engine_settings
    worker = start_worker(settings)
    accounts = [f"acct-{i:04d}" for i in range(120)]
    good = GatewayProducer(settings)  # murmur2, as the contract says
    for a in accounts:
        good.send("auth.events", login(a))
    good.flush()

    landed: dict[str, int] = {}

    def delivered(err, msg) -> None:
        assert err is None, err
        landed[msg.key().decode()] = msg.partition()

    # librdkafka's default partitioner: consistent_random (CRC32 of the key).
    stray = Producer({**settings.kafka_client_config(), "log_level": 3})
    for i, a in enumerate(accounts):
        stray.produce(settings.topic("orders"), key=a.encode(),
                      value=encode_value(order(f"o-{i}", a)), on_delivery=delivered)
    assert stray.flush(30) == 0
    misplaced = {a for a, p in landed.items() if home_partition(a.encode(), 4) != p}
    assert 0 < len(misplaced) < len(accounts)  # CRC32 agrees with murmur2 about 1 time in 4

    with TopicReader(settings, "decisions", "deadletter") as reader:
        got = reader.read_until(lambda rs: len(rs) >= len(accounts), 90)
        got += reader.poll(1.0)
    decided = {d["account_id"] for n, d in got if n == "decisions"}
    dead = [d for n, d in got if n == "deadletter"]
    assert decided == set(accounts) - misplaced, worker.log_tail()
    assert {d["key"] for d in dead} == misplaced
    for d in dead:
        assert d["source_topic"] == settings.topic("orders") and d["field"] is None
        assert f"hashes to partition {home_partition(d['key'].encode(), 4)} of 4" in d["error"]
        assert "partitioner=murmur2_random" in d["error"]
    wait_until(lambda: metric(settings, "tradeguard_partitioning_violations_total",
                              topic="orders") == len(misplaced), 20, "the metric",
               worker.log_tail)
    assert metric(settings, "tradeguard_deadletter_total", topic="orders",
                  reason="wrong_partition") == len(misplaced)

"""A gateway that partitions with librdkafka's default (CRC32) instead of murmur2.

Its orders land, for most accounts, on another partition than the accounts'
logins: a worker would see orders from sessions it never saw opened. The engine
checks each record's key against its partition and re-sends the strays to the
partition their key hashes to, where they are decided with the account's logins
(as Kafka Streams repartitions); a record with no key cannot be placed and is
dead-lettered with the fix in the reason.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from streams.codec import encode_value
from streams.partitioning import home_partition
from tests.faults.helpers import login, metric, order, wait_until
from agents.engine import REROUTED_HEADER
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.kafka import clients

pytestmark = pytest.mark.broker


def test_records_off_their_murmur2_partition_are_rerouted_and_decided(engine_settings,
                                                                      start_worker):
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
        if msg.key() is not None:
            landed[msg.key().decode()] = msg.partition()

    # librdkafka's default partitioner: consistent_random (CRC32 of the key).
    stray = Producer({**settings.kafka_client_config(), "log_level": 3})
    for i, a in enumerate(accounts):
        stray.produce(settings.topic("orders"), key=a.encode(),
                      value=encode_value(order(f"o-{i}", a)), on_delivery=delivered)
    # And one with no key at all: no partition is its own.
    stray.produce(settings.topic("orders"), value=encode_value(order("o-nokey", "acct-nokey")),
                  partition=0, on_delivery=delivered)
    assert stray.flush(30) == 0
    misplaced = {a for a, p in landed.items() if home_partition(a.encode(), 4) != p}
    assert 0 < len(misplaced) < len(accounts)  # CRC32 agrees with murmur2 about 1 time in 4

    with TopicReader(settings, "decisions", "deadletter") as reader:
        got = reader.read_until(
            lambda rs: sum(n == "decisions" for n, _ in rs) >= len(accounts)
            and any(n == "deadletter" for n, _ in rs), 90)
        got += reader.poll(1.0)
    decisions = [d for n, d in got if n == "decisions"]
    dead = [d for n, d in got if n == "deadletter"]
    # Every order decided exactly once, the strays included, each with its account's login
    # seen (a session the worker never saw opened would read as a stranger's).
    assert sorted(d["order_id"] for d in decisions) == sorted(
        f"o-{i}" for i in range(len(accounts))), worker.log_tail()
    assert [d["key"] for d in dead] == [None]
    assert "record has no key" in dead[0]["error"]
    assert "murmur2" in dead[0]["error"]
    # The rerouted copies sit on their murmur2 partition, naming where they came from.
    raw = clients.reader(settings, "test-rerouted")
    raw.assign([TopicPartition(settings.topic("orders"), p, OFFSET_BEGINNING) for p in range(4)])
    copies: dict[str, tuple[int, bytes]] = {}
    deadline = time.monotonic() + 30
    while len(copies) < len(misplaced) and time.monotonic() < deadline:
        for m in raw.consume(1000, 0.5):
            headers = dict(m.headers() or []) if not m.error() else {}
            if REROUTED_HEADER in headers:
                copies[m.key().decode()] = (m.partition(), headers[REROUTED_HEADER])
    raw.close()
    assert set(copies) == misplaced
    for key, (partition, origin) in copies.items():
        assert partition == home_partition(key.encode(), 4)
        assert origin.decode().split("@")[0] == str(landed[key])
    wait_until(lambda: metric(settings, "tradeguard_rerouted_total", topic="orders")
               == len(misplaced), 20, "the rerouted metric", worker.log_tail)
    assert metric(settings, "tradeguard_partitioning_violations_total",
                  topic="orders") == len(misplaced) + 1
    assert metric(settings, "tradeguard_deadletter_total", topic="orders",
                  reason="wrong_partition") == 1
    assert "partitioner=murmur2_random" in worker.log_tail(200)

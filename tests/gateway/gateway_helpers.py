"""Helpers for the gateway tests: orders, isolated topic sets, reading topics, metric samples."""

from __future__ import annotations

import itertools
import time
import uuid

from tradeguard.kafka.admin import create_topics
from tradeguard.broker.embedded import free_port
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.gateway import GatewayClient
from tradeguard.runtime.settings import Settings

_ids = itertools.count()


def order(account: str, ticker: str = "7203", side: str = "buy", **extra) -> dict:
    """A valid order with a fresh order_id, timestamped now."""
    return {"order_id": f"g-{uuid.uuid4().hex[:10]}-{next(_ids)}", "account_id": account,
            "ticker": ticker, "side": side, "qty": 100, "price": 2500.0, "margin": False,
            "session_id": f"s-{account}", "ts": int(time.time() * 1000), **extra}


def login(account: str) -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}",
            "ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "Mozilla/5.0",
            "country": "JP", "asn": 2516, "ts": int(time.time() * 1000) - 60_000}


def isolated_settings(broker, tmp_path, name: str) -> Settings:
    """Own topic prefix and consumer group on the shared broker, topics created."""
    tag = f"{name}{uuid.uuid4().hex[:6]}"
    settings = Settings.from_env(
        env={}, broker=broker.url, broker_profile=broker.profile, topic_prefix=f"{tag}.", app_id=f"tradeguard-{tag}",
        partitions=4, web_port=free_port(), web_host="127.0.0.1", state_dir=tmp_path / "state",
        # These tests write unsigned controls as any producer could: the gateway must be told
        # to trust them (it refuses to start keyless otherwise; tests/security covers that).
        trust_unsigned_controls=True)
    create_topics(settings)
    return settings


def wait_for_engine(settings: Settings, worker: WorkerProcess, timeout_s: float = 90) -> None:
    """Until the worker decides an order: started, assigned, control board restored."""
    deadline = time.monotonic() + timeout_s
    with GatewayClient(settings, mode="fail_closed") as gateway:
        while gateway.submit(order("warm-up"), deadline_ms=1_000).decided_by != "engine":
            assert worker.alive, f"the worker exited:\n{worker.log_tail()}"
            assert time.monotonic() < deadline, f"no decision in {timeout_s}s:\n{worker.log_tail()}"


def read_topic(settings: Settings, name: str, done, timeout_s: float = 30.0) -> list[tuple]:
    """(partition, offset, key, value) of records in registry topic ``name`` from the beginning,
    until ``done(records)`` holds and a fetch comes back empty (or the timeout passes)."""
    import orjson
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from tradeguard.kafka import clients as kafka

    consumer = kafka.reader(settings, "test")
    full = settings.topic(name)
    try:
        consumer.assign([TopicPartition(full, p, OFFSET_BEGINNING)
                         for p in kafka.partitions(consumer, settings, name)])
        out: list[tuple] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.3)
            if msg is None:
                if done(out):
                    break
                continue
            if not msg.error():
                out.append((msg.partition(), msg.offset(), msg.key().decode(),
                            orjson.loads(msg.value())))
        return out
    finally:
        consumer.close()


def sample(client: GatewayClient, name: str, **labels: str) -> float:
    """Current value of one of the client's metrics (0 when the series does not exist yet)."""
    return client.metrics.registry.get_sample_value(name, labels) or 0.0


def wait_until(condition, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def assert_on_murmur2_partitions(settings: Settings, order_ids: list[str]) -> None:
    """Every order in ``order_ids`` is on ``orders`` at the partition Java's murmur2 of its key
    gives (the engine's partitioner), as the broker stored it: an outside client's default
    partitioner agrees with ours."""
    from aiokafka.partitioner import murmur2

    ids = set(order_ids)
    stored = read_topic(settings, "orders",
                        lambda rs: ids <= {v.get("order_id") for *_, v in rs}, 30)
    ours = [(p, key) for p, _, key, v in stored if v.get("order_id") in ids]
    assert len(ours) == len(ids)
    for partition, key in ours:
        assert partition == (murmur2(key.encode()) & 0x7FFFFFFF) % settings.partitions, key

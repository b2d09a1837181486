"""Every Kafka client of TradeGuard is built here, from ``Settings`` and the broker profile.

Connection (bootstrap, security, credentials) is ``Settings.kafka_client_config()``;
broker-specific tuning is ``tradeguard.kafka.profiles``; what a caller needs beyond
that (a consumer group's assignment strategy, a benchmark's bigger batches) is passed
as overrides, which win.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tradeguard.kafka.errors import BrokerError
from tradeguard.runtime.settings import Settings

__all__ = ["admin", "end_offsets", "group_consumer", "partitions", "producer", "reader"]


def producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer that keys like Java, Faust and KafkaJS (murmur2) and keeps per-key order.

    Idempotence (acks=all, at most 5 requests in flight, sequence numbers) means a retried
    batch is neither duplicated nor reordered: a halt and its release are never swapped.
    """
    return Producer({
        **settings.kafka_client_config(),
        "partitioner": "murmur2_random",
        "linger.ms": settings.profile.linger_ms,
        "enable.idempotence": True,
        "log_level": 3,
        **_debug(settings),
        **overrides,
    })


def group_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that joins ``group_id``; offsets committed by the caller, never automatically."""
    return Consumer({
        **settings.kafka_client_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": settings.fetch_wait_ms,
        "log_level": 3,
        **_debug(settings),
        **overrides,
    })


def _debug(settings: Settings) -> dict[str, Any]:
    """librdkafka's own debug log (``TRADEGUARD_KAFKA_DEBUG``, e.g. ``cgrp,fetch``), for the
    engine's group consumer and producer: what a broker incident needs explained."""
    return {"debug": settings.kafka_debug, "log_level": 7} if settings.kafka_debug else {}


def reader(settings: Settings, purpose: str, **overrides: Any) -> Consumer:
    """A consumer for manual assignment; its group id is required by librdkafka, never joined.

    Readers assign partitions by hand: a process that watches topics needs no group
    membership, and joining one costs seconds before the first record arrives.
    """
    return Consumer({
        **settings.kafka_client_config(),
        "group.id": f"tradeguard-{purpose}-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": settings.fetch_wait_ms,
        "log_level": 3,
        **overrides,
    })


def admin(settings: Settings) -> AdminClient:
    # librdkafka's own connection-refused chatter would bury our one-line error.
    return AdminClient({**settings.kafka_client_config(), "log_level": 0})


def partitions(consumer: Consumer, settings: Settings, name: str,
               timeout_s: float = 10.0) -> list[int]:
    """Partition ids of registry topic ``name``; BrokerError if it is missing or unreachable."""
    full = settings.topic(name)
    try:
        meta = consumer.list_topics(full, timeout=timeout_s).topics.get(full)
    except KafkaException as exc:
        raise BrokerError(f"cannot reach the Kafka broker at {settings.bootstrap_servers} "
                          f"within {timeout_s:g}s: {exc}") from None
    if meta is None or meta.error is not None or not meta.partitions:
        raise BrokerError(f"topic {full} does not exist: run `tradeguard topics create`")
    return sorted(meta.partitions)


#: Errors a leader election or a just-created topic gives for a moment: asked again.
RETRIABLE = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                       KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT,
                       KafkaError.REQUEST_TIMED_OUT})


def end_offsets(consumer: Consumer, topic: str, parts: list[int],
                timeout_s: float = 10.0) -> dict[int, int]:
    """partition -> high watermark as the broker reports it.

    A partition whose leader is moving (or a topic created a moment ago) is asked
    again until ``timeout_s``. Tansu reports the base offset of the last batch, short
    of the true end: a reader starting there may see a few older records again.
    Apache Kafka's is exact.
    """
    deadline = time.monotonic() + timeout_s
    out = {}
    for p in parts:
        while True:
            try:
                out[p] = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=max(deadline - time.monotonic(), 0.1),
                    cached=False)[1]
                break
            except KafkaException as exc:
                if exc.args[0].code() not in RETRIABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    return out

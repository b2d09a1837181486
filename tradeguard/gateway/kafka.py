"""The gateway package's Kafka clients: readers without a consumer group, a low-latency producer.

Readers assign partitions by hand (no group: joining one costs seconds, and a
gateway that watches topics needs no membership) and keep the consumer fetch
wait short, because the embedded broker answers a fetch only when its wait
expires (``TRADEGUARD_FETCH_MAX_WAIT_MS``, 10 ms by default). On Apache Kafka a
long poll returns as soon as data arrives, so the short wait only costs a few
more empty fetches.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from tradeguard.broker.embedded import BrokerError
from tradeguard.runtime.settings import Settings

__all__ = ["end_offsets", "partitions", "producer", "reader"]


def reader(settings: Settings, purpose: str, **overrides: Any) -> Consumer:
    """A consumer for manual assignment; its group id is required by librdkafka, never joined."""
    return Consumer({
        **settings.kafka_client_config(),
        "group.id": f"tradeguard-{purpose}-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": settings.fetch_max_wait_ms,
        "log_level": 3,
        **overrides,
    })


def producer(settings: Settings, **overrides: Any) -> Producer:
    """Keys hashed with murmur2 like Java, Faust and KafkaJS; a 1 ms linger keeps batches small."""
    return Producer({
        **settings.kafka_client_config(),
        "partitioner": "murmur2_random",
        "linger.ms": 1,
        "log_level": 3,
        **overrides,
    })


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


def end_offsets(consumer: Consumer, topic: str, parts: list[int],
                timeout_s: float = 10.0) -> dict[int, int]:
    """partition -> high watermark as the broker reports it.

    The embedded broker reports the base offset of the last batch, short of the
    true end: a reader starting there may see a few older records again.
    """
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s,
                                              cached=False)[1]
            for p in parts}

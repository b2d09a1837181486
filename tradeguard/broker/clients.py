"""Kafka clients as an order gateway uses them: produce inputs, read what the engine says.

The demo, the tests and the benchmarks all talk to the engine through these,
with confluent-kafka, exactly as a gateway in production would.
"""

from __future__ import annotations

import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

from tradeguard.kafka import clients
from tradeguard.kafka.producer import RecordProducer
from tradeguard.runtime.settings import Settings

__all__ = ["GatewayProducer", "TopicReader"]

#: What a gateway does to send orders: the production producer (tradeguard/kafka/producer.py).
GatewayProducer = RecordProducer


class TopicReader:
    """Read registry topics from the beginning (or the end), every partition, no consumer group.

    Manual assignment rather than a group subscription: a reader that only
    watches needs no group membership, and joining one costs seconds (on the
    embedded broker about fifteen) before the first record arrives.
    """

    def __init__(self, settings: Settings, *names: str, from_beginning: bool = True,
                 timeout_s: float = 10.0) -> None:
        self.settings = settings
        self._consumer = clients.reader(settings, "reader")
        self._names = {settings.topic(n): n for n in names}
        metadata = self._consumer.list_topics(timeout=timeout_s)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        parts = []
        for full in self._names:
            meta = metadata.topics.get(full)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KafkaException(f"topic {full} does not exist: run `tradeguard topics create`")
            parts += [TopicPartition(full, p, start) for p in meta.partitions]
        self._consumer.assign(parts)

    def poll(self, timeout_s: float = 0.2, max_records: int = 10_000) -> list[tuple[str, dict]]:
        """(registry topic, decoded value) pairs available now."""
        out = []
        for msg in self._consumer.consume(max_records, timeout_s):
            if msg.error():
                continue  # partition EOF and transient errors: nothing to decode
            out.append((self._names[msg.topic()], orjson.loads(msg.value())))
        return out

    def read_until(self, done, timeout_s: float) -> list[tuple[str, dict]]:
        """Poll until ``done(records_so_far)`` is true or the timeout passes."""
        records: list[tuple[str, dict]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            records.extend(self.poll())
            if done(records):
                break
        return records

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> "TopicReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

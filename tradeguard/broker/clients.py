"""Kafka clients as an order gateway uses them: produce inputs, read what the engine says.

The demo, the tests and the benchmarks all talk to the engine through these,
with confluent-kafka, exactly as a gateway in production would.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

from streams.codec import encode_key, encode_value
from streams.topics import topic
from tradeguard.kafka import clients
from tradeguard.runtime.settings import Settings

__all__ = ["GatewayProducer", "TopicReader"]


class GatewayProducer:
    """Produce records keyed as the contract says (murmur2, like Java and Faust)."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        self._producer = clients.producer(settings, **overrides)
        self._errors: list[str] = []

    def send(self, name: str, record: dict[str, Any] | bytes, key: str | None = None) -> None:
        """Queue one record for registry topic ``name``; raw bytes are sent as they are."""
        if key is None:
            if isinstance(record, bytes):
                raise ValueError("raw bytes need an explicit key")
            key = str(record[topic(name).key])
        value = record if isinstance(record, bytes) else encode_value(record)
        while True:
            try:
                self._producer.produce(self.settings.topic(name), key=encode_key(key),
                                       value=value, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let librdkafka drain it
                self._producer.poll(0.05)
        self._producer.poll(0)

    def send_many(self, name: str, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            self.send(name, r)

    def _on_delivery(self, err, _msg) -> None:
        if err is not None:
            self._errors.append(str(err))

    def poll(self) -> None:
        """Serve delivery callbacks without blocking (call it while pacing a replay)."""
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        left = self._producer.flush(timeout_s)
        if left or self._errors:
            raise KafkaException(f"{left} records undelivered; errors: {self._errors[:5]}")


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

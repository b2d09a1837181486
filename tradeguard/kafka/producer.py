"""Registry records onto Kafka, keyed as the contract says, with delivery checked."""

from __future__ import annotations

from typing import Any, Iterable

from confluent_kafka import KafkaException

from streams.codec import encode_key, encode_value
from streams.topics import topic
from tradeguard.kafka import clients
from tradeguard.runtime.settings import Settings

__all__ = ["RecordProducer"]


class RecordProducer:
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

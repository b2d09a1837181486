"""What every agent of one worker shares: settings, topics, core state, and the way out.

The agents stay short because everything they repeat lives here: decoding a
batch of Kafka events with dead-lettering, sending records, counting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import faust

from streams.codec import deadletter_record, encode_key, encode_value
from streams.schema import RecordError
from streams.topics import TOPICS
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.metrics import EngineMetrics
from tradeguard.runtime.settings import Settings
from tradeguard.surveillance.controls import ControlBoard
from tradeguard.surveillance.infrastructure import InfrastructureWatch

__all__ = ["Decoded", "WorkerContext", "now_ms"]

log = logging.getLogger("agents.worker")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Decoded:
    """A valid record and where it came from."""

    topic: str  # registry name, without prefix
    record: dict[str, Any]


@dataclass
class WorkerContext:
    settings: Settings
    app: faust.App
    policy: PolicyFile
    board: ControlBoard = field(default_factory=ControlBoard)
    # ticker -> (normal daily traded value, last price), replicated from tickers.profile
    profiles: dict[str, tuple[float, float]] = field(default_factory=dict)
    # every account's logins (all partitions), for the shared-infrastructure signal
    infra: InfrastructureWatch = field(default_factory=InfrastructureWatch)
    counters: Counter = field(default_factory=Counter)
    last_snapshot_at: float | None = None
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    board_ready: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: EngineMetrics = field(default_factory=EngineMetrics)

    def __post_init__(self) -> None:
        # Registry name by full (prefixed) name, and the schema each topic carries.
        self._name_of = {self.settings.topic(t.name): t.name for t in TOPICS}
        self._schema_of = {t.name: t.schema for t in TOPICS}
        for t in TOPICS:
            self.topics[t.name] = self.app.topic(
                self.settings.topic(t.name), key_serializer="raw", value_serializer="raw",
                partitions=self.settings.partitions, internal=False,
            )

    def schema(self, name: str):
        return self._schema_of[name]

    def aiokafka_security(self) -> dict[str, Any]:
        """The same credentials as the Faust app, for the plain aiokafka consumer."""
        s = self.settings
        conf: dict[str, Any] = {"security_protocol": s.security_protocol}
        if s.security_protocol.startswith("SASL"):
            conf.update(sasl_mechanism=s.sasl_mechanism, sasl_plain_username=s.sasl_username,
                        sasl_plain_password=s.password())
        if s.security_protocol.endswith("SSL"):
            import ssl

            conf["ssl_context"] = ssl.create_default_context(cafile=s.ssl_cafile or None)
        return conf

    def channel(self, *names: str) -> faust.TopicT:
        """One Faust channel over several registry topics (they must be co-partitioned)."""
        return self.app.topic(*(self.settings.topic(n) for n in names),
                              key_serializer="raw", value_serializer="raw")

    async def decode(self, events: Iterable[faust.EventT]) -> list[Decoded]:
        """Validate a batch; invalid records go to ``deadletter`` and are counted, not raised."""
        out: list[Decoded] = []
        for event in events:
            msg = event.message
            name = self._name_of.get(msg.topic, msg.topic)
            try:
                record = self._schema_of[name].decode(event.value)
            except RecordError as exc:
                await self.deadletter(name, msg, exc)
                continue
            out.append(Decoded(name, record))
        return out

    async def deadletter(self, name: str, msg: Any, error: Exception) -> None:
        self.counters[f"deadletter:{name}"] += 1
        self.metrics.observe_deadletter(name, error)
        log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, error)
        await self.send("deadletter", name, deadletter_record(
            source_topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=msg.key, value=msg.value, error=error, now_ms=now_ms()))

    async def send(self, name: str, key: str, record: dict[str, Any]) -> None:
        """Queue one record for ``name``; delivery is awaited before offsets are committed."""
        await self.app.producer.send(
            self.settings.topic(name), encode_key(key), encode_value(record),
            partition=None, timestamp=None, headers=None)

    async def send_all(self, name: str, key_field: str, records: list[dict[str, Any]]) -> None:
        for record in records:
            await self.send(name, record[key_field], record)
        self.counters[f"sent:{name}"] += len(records)

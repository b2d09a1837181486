"""The recorded topics as a replay reads them: by time range, partition by partition.

The only module of ``tradeguard.replay`` that talks to Kafka. One
confluent-kafka consumer per read, partitions assigned by hand (no group:
nothing joined, nothing committed), values decoded in batches with the same
typed decoders the live engine uses (``streams.wire.BatchDecoder``).

Where to start: ``offsets_for_times`` finds, per partition, the first record
*written* at or after a time. A record is written after its event happened,
or at most ``max_event_lead_s`` before it (the live engine dead-letters records
further ahead of its clock), so starting at ``since - max_event_lead_s`` misses
no record whose event time is ``since`` or later. Some brokers (the embedded
Tansu) answer every such lookup with the partition's start: still a correct
lower bound, only slower; records before ``since`` are skipped by event time.

Where to stop: at the first record of a partition at or past ``stop_ms`` in
event time (a partition's records come in event-time order), or at its end:
the end is reached when the partition reported EOF and nothing more came for
``EOF_GRACE_S`` (some brokers report end offsets short of the true end).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from streams.schema import RecordError
from streams.signing import ControlKeys, attest, attest_answers
from streams.topics import AUTH_EVENTS, FEEDBACK, topic as topic_spec
from streams.wire import BatchDecoder
from streams.partitioning import belongs
from tradeguard.core import INPUT_TOPICS
from tradeguard.kafka.clients import partitions, reader
from tradeguard.runtime.settings import Settings

__all__ = ["Chunk", "EOF_GRACE_S", "RecordedTopics", "SourceReader"]

#: A partition that reported EOF is finished once nothing more came for this long.
EOF_GRACE_S = 0.5
#: Messages asked of librdkafka per consume call.
CONSUME_MAX = 20_000

Source = tuple[str, int]  # (registry topic name, partition)

#: Topics the engine decides from, each checked against the partitioning contract live.
ENGINE_INPUTS = frozenset(INPUT_TOPICS)


@dataclass
class Chunk:
    """Records of one source from one fetch, decoded, in offset order."""

    source: Source
    records: list[Any] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    published_ms: list[int] = field(default_factory=list)  # Kafka timestamps
    closed: bool = False  # the source is finished after these records
    values: list[bytes] = field(default_factory=list)  # the raw values, with ``keep_values``


class RecordedTopics:
    """Partition layout and start positions of the registry topics on one broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._meta = reader(settings, "replay-meta")

    def partitions(self, name: str) -> list[int]:
        return partitions(self._meta, self.settings, name)

    def starts(self, name: str, since_ms: int | None) -> dict[int, int]:
        """partition -> first offset written at or after ``since_ms`` (None: the beginning)."""
        parts = self.partitions(name)
        if since_ms is None:
            return {p: OFFSET_BEGINNING for p in parts}
        full = self.settings.topic(name)
        found = self._meta.offsets_for_times([TopicPartition(full, p, max(since_ms, 0))
                                              for p in parts], timeout=10)
        # -1: nothing written since then; read from the end (a live topic may still grow).
        return {tp.partition: tp.offset if tp.offset >= 0 else OFFSET_END for tp in found}

    def oldest(self, name: str) -> dict[int, int]:
        """partition -> the oldest offset still held (the low watermark)."""
        full = self.settings.topic(name)
        return {p: self._meta.get_watermark_offsets(TopicPartition(full, p), timeout=10,
                                                    cached=False)[0]
                for p in self.partitions(name)}

    def close(self) -> None:
        self._meta.close()


class SourceReader:
    """Reads sources from given offsets, decoded, until each one's stop or end.

    ``stop_ms`` with ``event_ts`` (record -> event time): a source finishes at
    its first record at or past ``stop_ms``; that record is not returned. Topics
    in ``to_end`` are read to their end regardless.
    ``skip``: (topic, partition, offset) of records to leave out (what the live
    engine dead-lettered). Undecodable values are counted in ``bad`` with the
    first few errors in ``bad_examples``: the live engine dead-lettered them too.
    """

    def __init__(self, settings: Settings, starts: dict[Source, int],
                 stop_ms: int | None = None,
                 event_ts: Callable[[Any], int] = lambda r: r.ts,
                 skip: set[tuple[str, int, int]] | None = None,
                 consume_max: int = CONSUME_MAX, keep_values: bool = False,
                 to_end: frozenset[str] = frozenset()) -> None:
        self.settings = settings
        self.keep_values = keep_values
        self.to_end = to_end
        self.stop_ms, self.event_ts = stop_ms, event_ts
        self.skip = skip or set()
        self.consume_max = consume_max
        self.names = {settings.topic(name): name for name, _ in starts}
        self.decoders = {name: BatchDecoder(topic_spec(name).schema) for name in self.names.values()}
        # Labels and step-up answers act only when signed, as on a live worker (agents/engine.py).
        self.keys = ControlKeys.from_settings(settings)
        self.open: set[Source] = set(starts)
        self.bad: dict[str, int] = {}
        self.bad_examples: list[str] = []
        self.skipped = 0
        self.moved = 0  # records the live engine re-sent to their murmur2 partition
        self.read = 0
        self._at_end: dict[Source, float] = {}
        self._consumer = reader(settings, "replay", **{
            "enable.partition.eof": True,
            # Whole fetches, not the gateway-sized ones: this reads history in bulk.
            "max.partition.fetch.bytes": 8 << 20,
            "queued.max.messages.kbytes": 256 << 10,
        })
        self._consumer.assign([TopicPartition(settings.topic(name), p, offset)
                               for (name, p), offset in starts.items()])

    def chunks(self) -> Iterator[list[Chunk]]:
        """One list of chunks per fetch (empty lists too, so the caller can act between)."""
        consumer, names = self._consumer, self.names
        try:
            while self.open:
                messages = consumer.consume(self.consume_max, 0.05)
                now = time.monotonic()
                grouped: dict[Source, list[Any]] = {}
                for msg in messages:
                    err = msg.error()
                    source = (names[msg.topic()], msg.partition())
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            self._at_end.setdefault(source, now)
                        elif err.fatal():
                            raise RuntimeError(f"Kafka error reading {msg.topic()}: {err.str()}")
                        continue
                    self._at_end.pop(source, None)
                    if source in self.open:
                        grouped.setdefault(source, []).append(msg)
                out = [self._decode(source, msgs) for source, msgs in grouped.items()]
                for source, since in list(self._at_end.items()):
                    if source in self.open and now - since >= EOF_GRACE_S and \
                            source not in grouped:
                        out.append(Chunk(source, closed=True))
                        self._finish(source)
                yield out
        finally:
            self._consumer.close()

    def _decode(self, source: Source, messages: list[Any]) -> Chunk:
        name, p = source
        self.read += len(messages)
        if self.skip:
            kept = [m for m in messages if (name, p, m.offset()) not in self.skip]
            self.skipped += len(messages) - len(kept)
            messages = kept
        if name in ENGINE_INPUTS:
            # Off its key's murmur2 partition: the live engine re-sent it to its own, where
            # this reader finds the copy; the original is not decided where it sits.
            partitions = self.settings.partitions
            kept = [m for m in messages if belongs(m.key(), p, partitions)]
            self.moved += len(messages) - len(kept)
            messages = kept
        values = [m.value() for m in messages]
        records, bad = self.decoders[name].decode_many(values)
        if bad:
            self._count_bad(name, source, messages, bad)
            bad_rows = {i for i, _ in bad}
            messages = [m for i, m in enumerate(messages) if i not in bad_rows]
            values = [v for i, v in enumerate(values) if i not in bad_rows]
        if name == FEEDBACK:
            records = attest(records, values, self.keys)
        elif name == AUTH_EVENTS:
            records = attest_answers(records, values, self.keys)
        chunk = Chunk(source, records, [m.offset() for m in messages],
                      [m.timestamp()[1] for m in messages],
                      values=values if self.keep_values else [])
        if self.stop_ms is not None and records and name not in self.to_end \
                and self.event_ts(records[-1]) >= self.stop_ms:
            stop_ms, event_ts = self.stop_ms, self.event_ts
            k = next(i for i, r in enumerate(records) if event_ts(r) >= stop_ms)
            chunk.records, chunk.offsets = records[:k], chunk.offsets[:k]
            chunk.published_ms = chunk.published_ms[:k]
            chunk.values = chunk.values[:k]
            chunk.closed = True
            self._finish(source)
        return chunk

    def _count_bad(self, name: str, source: Source, messages: list[Any],
                   bad: list[tuple[int, RecordError]]) -> None:
        self.bad[name] = self.bad.get(name, 0) + len(bad)
        for i, error in bad[: max(0, 5 - len(self.bad_examples))]:
            self.bad_examples.append(f"{name}[{source[1]}]@{messages[i].offset()}: {error}")

    def _finish(self, source: Source) -> None:
        self.open.discard(source)
        self._at_end.pop(source, None)
        name, p = source
        self._consumer.pause([TopicPartition(self.settings.topic(name), p)])

    def pause(self, source: Source) -> None:
        """Stop fetching ``source`` for now (its records are far ahead of the others')."""
        name, p = source
        self._consumer.pause([TopicPartition(self.settings.topic(name), p)])

    def resume(self, source: Source) -> None:
        name, p = source
        if source in self.open:
            self._consumer.resume([TopicPartition(self.settings.topic(name), p)])

    def read_all(self) -> dict[Source, Chunk]:
        """Every source to its stop or end, one chunk per source (small topics)."""
        out: dict[Source, Chunk] = {}
        for chunks in self.chunks():
            for c in chunks:
                whole = out.setdefault(c.source, Chunk(c.source))
                whole.records += c.records
                whole.offsets += c.offsets
                whole.published_ms += c.published_ms
                whole.values += c.values
                whole.closed = whole.closed or c.closed
        return out

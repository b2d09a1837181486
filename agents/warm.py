"""Warm a cold engine from recorded history: partition snapshots the first workers restore.

With no snapshot, a worker starts every partition from scratch: every account is
unknown (no device or network history, no baselines) and every ticker has no
profile. ``tradeguard warm`` runs recorded history (the last days of logins,
orders, labels and trades, from a file or from the input topics) through the
decision core in event time, in process (``InProcessEngine``, with the workers'
partition count and policy), and writes what it learned as one snapshot per
partition to ``state.snapshots`` in the format ``agents.state`` restores.

- The history's decisions, halts and account controls are discarded: they were
  never enforced, so nothing goes to ``decisions`` or ``controls.*``. The ticker
  profiles the history's trades give are published to ``tickers.profile`` (the
  compacted topic every worker reads whole), as a worker that had decided the
  history would have: each ticker's latest, so an order is valued by it from the
  first minute.
- The manifest's offsets say where the snapshot stands on each input topic, so the
  worker neither replays the history nor decides it again (it skips records below
  them). From Kafka: the offsets the warm read up to. From a file: the topics'
  ends at warm time; records already on the topics are treated as covered (the
  file is taken to be the history that matters; use ``--from-kafka`` to learn from
  what is on the topics).
- It runs before the first worker starts: a topic set with snapshots, or with
  offsets committed by the workers' group, is refused unless ``force``.

``reference.tickers`` records in a history file are applied to the warm's own
decisions (thin-ticker valuation) but not published: that topic is the instrument
master's, and every worker reads it whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from agents.state import PartitionState, SnapshotStore, read_all, reader
from streams.bounds import Limits, implausible
from streams.codec import encode_value
from streams.partitioning import misplaced
from streams.topics import topic as topic_spec
from streams.topics import (AUTH_EVENTS, FEEDBACK, MARKET_TRADES, ORDERS, REFERENCE_TICKERS,
                            TICKERS_FLOW, TICKERS_PROFILE, TOPICS)
from streams.wire import BatchDecoder
from tradeguard.core import INPUT_TOPICS, InProcessEngine
from tradeguard.kafka.clients import group_consumer, partitions, producer
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.settings import Settings

__all__ = ["HISTORY_TOPICS", "HistoryError", "WarmError", "WarmReport", "read_history_file",
           "read_history_kafka", "warm"]

log = logging.getLogger("tradeguard.warm")

#: What history may hold, in the order records of one event time are decided.
HISTORY_TOPICS = (REFERENCE_TICKERS, MARKET_TRADES, AUTH_EVENTS, ORDERS, FEEDBACK)
_RANK = {name: i for i, name in enumerate(HISTORY_TOPICS)}
DAY_MS = 86_400_000
#: Longest a read of the history topics may take (a few days of a busy broker).
READ_TIMEOUT_S = 1800.0
#: Lines named in a refusal, at most (the counts cover all of them).
SHOWN = 20

History = list[tuple[str, Any]]  # (registry topic, typed record), in event-time order


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    """One line of a history file; the record stays raw JSON for the topic's typed decoder."""

    topic: str
    record: msgspec.Raw


# Raw slices of each line, not a re-encoded copy: a small bytes object from orjson.dumps
# keeps ~4 KB of heap (155,807 records took 700 MB that way; the lines themselves 30 MB).
_decode_line = msgspec.json.Decoder(_Line).decode


class HistoryError(ValueError):
    """History that cannot be warmed from: every offending line named (up to ``SHOWN``)."""


class WarmError(RuntimeError):
    """The topics are not in a state a warm may write to (snapshots exist, workers ran)."""


@dataclass
class WarmReport:
    """What a warm read, learned and wrote."""

    records: dict[str, int] = field(default_factory=dict)  # history records per topic
    decided: int = 0  # history orders decided (and discarded)
    snapshots: dict[int, int] = field(default_factory=dict)  # partition -> generation
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> p -> offset
    profiles: int = 0  # ticker profiles published
    skipped: dict[str, int] = field(default_factory=dict)  # Kafka: why -> records left out
    skipped_examples: list[str] = field(default_factory=list)


def _in_event_time(history: History) -> History:
    """Stable sort by event time; at one time, reference data, trades, logins, orders, labels."""
    return sorted(history, key=lambda item: (item[1].ts, _RANK[item[0]]))


def _not_history(name: Any) -> str:
    if name == TICKERS_FLOW:
        return ("topic 'tickers.flow' is derived by the engine from orders: leave it out of "
                "the history")
    if any(t.name == name for t in TOPICS):
        return f"topic {name!r} is not history the engine learns from; history topics: " \
               f"{', '.join(HISTORY_TOPICS)}"
    return f"unknown topic {name!r}; history topics: {', '.join(HISTORY_TOPICS)}"


def read_history_file(path: str | Path, limits: Limits | None = None) -> History:
    """The records of a JSON-lines history file (``tradeguard simulate --dump``), checked.

    Each line is ``{"topic": NAME, "record": {...}}``; blank lines are allowed. Every
    record is decoded with the contract's typed decoder and checked against the
    plausible bounds, as a worker checks what it consumes. Any line that fails is a
    ``HistoryError`` naming it: nothing is warmed from a file that is partly wrong.
    """
    path = Path(path)
    limits = limits or Limits()
    problems: list[tuple[int, str]] = []
    raw: dict[str, tuple[list[int], list[msgspec.Raw]]] = {}
    lines = 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise HistoryError(f"cannot read history file {path}: {exc.strerror}") from None
    with handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            lines += 1
            try:
                entry = _decode_line(line)
            except msgspec.ValidationError as exc:  # (a DecodeError too: first)
                problems.append((n, f'expected {{"topic": NAME, "record": {{...}}}}: {exc}'))
                continue
            except msgspec.DecodeError as exc:
                problems.append((n, f"not JSON: {exc}"))
                continue
            if entry.topic not in _RANK:
                problems.append((n, _not_history(entry.topic)))
                continue
            numbers, values = raw.setdefault(entry.topic, ([], []))
            numbers.append(n)
            values.append(entry.record)
    history: History = []
    for name, (numbers, values) in raw.items():
        records, bad = BatchDecoder(topic_spec(name).schema).decode_many(values)
        bad_rows = {i for i, _ in bad}
        problems += [(numbers[i], f"{name}: {error}") for i, error in bad]
        numbers = [x for i, x in enumerate(numbers) if i not in bad_rows]
        beyond = implausible(name, records, limits)
        problems += [(numbers[i], f"{name}: {error}") for i, error in beyond]
        beyond_rows = {i for i, _ in beyond}
        history += [(name, r) for i, r in enumerate(records) if i not in beyond_rows]
    if problems:
        problems.sort()
        shown = "\n".join(f"  line {n}: {why}" for n, why in problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise HistoryError(f"{path}: {len(problems)} of {lines} records refused, nothing "
                           f"warmed:\n{shown}{more}")
    if not history:
        raise HistoryError(f"{path}: no records; expected JSON lines "
                           '{"topic": NAME, "record": {...}}')
    return _in_event_time(history)


def read_history_kafka(settings: Settings, days: float, report: WarmReport,
                       now_ms: int | None = None) -> tuple[History, dict[tuple[str, int], int]]:
    """The history topics' records of the last ``days`` (event time), and where reading stopped.

    Where to start: ``offsets_for_times`` finds the first record *written* at or after
    a time; a record is written after its event, or at most ``max_event_lead_s``
    before it, so starting there misses none whose event is in the window. The
    embedded broker (Tansu) answers every such lookup with the partition's start
    (checked: also for a time after the last record): still a correct lower bound,
    only slower; what is older than the window is then left out by its event time.
    ``reference.tickers`` is read whole, as a worker reads it.

    Records a worker would dead-letter (failing the contract, off their key's
    partition, beyond the plausible bounds) are left out, counted in ``report``
    with the first few named: the topics are the gateways', and a worker skips them
    too. Returns the history and, per (full topic, partition), the offset after the
    last record read (the snapshot covers everything below it).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    since = now_ms - int(days * DAY_MS)
    lookup = max(since - int(settings.max_event_lead_s * 1000), 0)
    names = {settings.topic(n): n for n in HISTORY_TOPICS}
    limits = Limits.from_settings(settings)
    consumer = reader(settings)
    try:
        starts: dict[tuple[str, int], int] = {}
        for name in HISTORY_TOPICS:
            full = settings.topic(name)
            parts = partitions(consumer, settings, name)
            if name == REFERENCE_TICKERS:
                for p in parts:
                    starts[(full, p)] = max(consumer.get_watermark_offsets(
                        TopicPartition(full, p), timeout=10, cached=False)[0], 0)
                continue
            found = consumer.offsets_for_times([TopicPartition(full, p, lookup) for p in parts],
                                               timeout=10)
            nothing_since = [TopicPartition(full, tp.partition) for tp in found if tp.offset < 0]
            ends = _true_ends(consumer, nothing_since)
            for tp in found:
                starts[(full, tp.partition)] = (tp.offset if tp.offset >= 0
                                                else ends[(full, tp.partition)])
        messages = read_all(consumer, [TopicPartition(t, p, o) for (t, p), o in starts.items()],
                            timeout_s=READ_TIMEOUT_S)
    finally:
        consumer.close()
    reached = dict(starts)
    grouped: dict[tuple[str, int], list[Any]] = {}
    for msg in messages:
        key = (msg.topic(), msg.partition())
        grouped.setdefault(key, []).append(msg)
        reached[key] = max(reached[key], msg.offset() + 1)
    history: History = []
    for (full, p), msgs in grouped.items():
        name = names[full]
        left_out: list[tuple[Any, str, Exception]] = []
        if name != REFERENCE_TICKERS:  # compacted, keyed by ticker, not co-partitioned
            wrong = misplaced([m.key() for m in msgs], p, settings.partitions)
            left_out += [(msgs[i], "wrong_partition", error) for i, error in wrong]
            wrong_rows = {i for i, _ in wrong}
            msgs = [m for i, m in enumerate(msgs) if i not in wrong_rows]
        records, bad = BatchDecoder(topic_spec(name).schema).decode_many([m.value() for m in msgs])
        left_out += [(msgs[i], "contract", error) for i, error in bad]
        bad_rows = {i for i, _ in bad}
        msgs = [m for i, m in enumerate(msgs) if i not in bad_rows]
        beyond = implausible(name, records, limits)
        left_out += [(msgs[i], "bounds", error) for i, error in beyond]
        beyond_rows = {i for i, _ in beyond}
        kept = [r for i, r in enumerate(records) if i not in beyond_rows]
        for msg, why, error in left_out:
            report.skipped[why] = report.skipped.get(why, 0) + 1
            if len(report.skipped_examples) < SHOWN:
                report.skipped_examples.append(
                    f"{full}[{msg.partition()}]@{msg.offset()}: {error}")
        if name != REFERENCE_TICKERS:
            before = len(kept)
            kept = [r for r in kept if r.ts >= since]
            if before > len(kept):
                report.skipped["older_than_window"] = (report.skipped.get("older_than_window", 0)
                                                       + before - len(kept))
        history += [(name, r) for r in kept]
    return _in_event_time(history), reached


def _true_ends(consumer: Consumer, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after its last record.

    Read from the reported high watermark to the end, because some brokers (the
    embedded Tansu) report the last batch's base offset, short of the true end.
    """
    ends = {}
    for tp in tps:
        ends[(tp.topic, tp.partition)] = consumer.get_watermark_offsets(
            tp, timeout=10, cached=False)[1]
    tail = [TopicPartition(t, p, o) for (t, p), o in ends.items()]
    for msg in read_all(consumer, tail):
        key = (msg.topic(), msg.partition())
        ends[key] = max(ends[key], msg.offset() + 1)
    return ends


def _refuse_unless_cold(settings: Settings, store: SnapshotStore, consumer: Consumer,
                        force: bool) -> dict[int, int]:
    """partition -> generation of its snapshot, if any; WarmError when workers ran (no force)."""
    existing = store.load(consumer, set(range(settings.partitions)))
    generations = {p: manifest["generation"] for p, (manifest, _) in existing.items()}
    if force:
        return generations
    if generations:
        raise WarmError(f"{store.topic} already holds snapshots of partitions "
                        f"{sorted(generations)}: the engine is not cold (a worker or an earlier "
                        "warm wrote them); --force replaces them")
    group = group_consumer(settings, settings.app_id)
    try:
        tps = [TopicPartition(settings.topic(n), p) for n in INPUT_TOPICS
               for p in range(settings.partitions)]
        committed = [tp for tp in group.committed(tps, timeout=30) if tp.offset >= 0]
    finally:
        group.close()
    if committed:
        raise WarmError(f"consumer group {settings.app_id!r} has committed offsets on "
                        f"{len(committed)} input partitions (e.g. {committed[0].topic}"
                        f"[{committed[0].partition}]): workers have run; warm before the first "
                        "worker starts, or --force")
    return generations


def _check_layout(consumer: Consumer, settings: Settings) -> None:
    """Every input topic has the workers' partition count (snapshots are per partition)."""
    for name in INPUT_TOPICS:
        parts = partitions(consumer, settings, name)
        if len(parts) != settings.partitions:
            raise WarmError(f"topic {settings.topic(name)} has {len(parts)} partitions, the "
                            f"workers TRADEGUARD_PARTITIONS={settings.partitions}")


def warm(settings: Settings, history_file: str | Path | None = None,
         days: float | None = None, force: bool = False) -> WarmReport:
    """Warm from ``history_file``, or from the topics' last ``days``; write the snapshots."""
    if (history_file is None) == (days is None):
        raise ValueError("warm from a history file or from the topics' last days, not both")
    if days is not None and not days > 0:
        raise ValueError(f"--days must be > 0, got {days:g}")
    report = WarmReport()
    store = SnapshotStore(settings)
    consumer = reader(settings)
    try:
        _check_layout(consumer, settings)
        generations = _refuse_unless_cold(settings, store, consumer, force)
        if history_file is not None:
            history = read_history_file(history_file, Limits.from_settings(settings))
            # Records already on the topics count as covered: the snapshot starts at the end.
            reached = _true_ends(consumer, [TopicPartition(settings.topic(n), p)
                                            for n in INPUT_TOPICS
                                            for p in range(settings.partitions)])
        else:
            history, reached = read_history_kafka(settings, days, report)
            # tickers.flow is derived from orders: the warm made its own, in memory.
            reached.update(_true_ends(consumer, [TopicPartition(settings.topic(TICKERS_FLOW), p)
                                                 for p in range(settings.partitions)]))
    finally:
        consumer.close()
    for name, _ in history:
        report.records[name] = report.records.get(name, 0) + 1

    policy = PolicyFile(settings.policy_file or None).current()
    engine = InProcessEngine(policy, partitions=settings.partitions,
                             home_market=settings.home_market,
                             anomaly_window=settings.anomaly_window)
    latest_profile: dict[str, dict[str, Any]] = {}
    for out in engine.run(history):
        report.decided += len(out.decisions)
        for profile in out.profiles:
            latest_profile[profile["ticker"]] = profile

    out = producer(settings, **{"enable.idempotence": True})
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for ticker, profile in sorted(latest_profile.items()):
        out.produce(settings.topic(TICKERS_PROFILE), encode_value(profile), ticker.encode(),
                    on_delivery=delivered)
    names = {settings.topic(n): n for n in INPUT_TOPICS}
    for p, core in enumerate(engine.cores):
        state = PartitionState(core, generation=generations.get(p, 0))
        state.next_offsets = {full: reached[(full, p)] for full in names}
        for key, value in store.records(p, state):
            out.produce(store.topic, value, key, on_delivery=delivered)
        report.snapshots[p] = state.generation
        for full, offset in state.next_offsets.items():
            report.offsets.setdefault(names[full], {})[p] = offset
    try:
        left = out.flush(60)
    except KafkaException as exc:
        raise WarmError(f"writing the snapshots failed: {exc}") from None
    if left or errors:
        raise WarmError(f"writing the snapshots failed: {left} records undelivered; "
                        f"{errors[:3]}")
    report.profiles = len(latest_profile)
    log.info("warmed %d partitions from %d records (%d orders decided and discarded)",
             len(report.snapshots), sum(report.records.values()), report.decided)
    return report

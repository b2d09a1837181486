"""The hot path's Kafka edge: librdkafka (confluent-kafka) moving records in batches.

One consumer thread polls thousands of records at a time and hands each poll,
as one object, to the event loop: ``hand_off`` puts it on the in-memory Faust
channel the record-path agent reads (``agents/record_path.py``), one Faust event
per poll, never one per record; one producer takes the outputs (measurements in
docs/architecture.md).

Rebalances arrive as markers in the same channel as the records, so the agent
sees them in order: a revoke waits until every batch polled before it has been
decided, its outputs delivered and its offsets committed (eager ``range``
assignment: every input topic's partition p lands on the same worker, which is
what co-partitioning needs).

Two processing guarantees (``TRADEGUARD_PROCESSING_GUARANTEE``):

- exactly once (Apache Kafka's default here): every step's outputs and the input
  offsets they account for commit in one transaction, with the consumer group's
  metadata (KIP-447). A worker paused past its session (a zombie) finds its
  generation stale at commit: the transaction aborts, readers (read_committed, the
  librdkafka default) never see its outputs; the worker drops what it learnt since its
  last commit and joins the group again (``rejoin``), restoring what it is given from
  the snapshots, as after a restart.
- at least once: a poll's offsets are committed only after every record it produced
  has been delivered (``Delivery``), in poll order; a crash may decide an order twice,
  and the second decision can differ (the successor had read more logins by then).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tradeguard.kafka import clients
from tradeguard.runtime.settings import Settings

__all__ = ["Assigned", "Delivery", "Fenced", "KafkaPipe", "Poll", "Revoked"]

log = logging.getLogger("tradeguard.pipe")


@dataclass
class Poll:
    """Records of one poll, grouped by (topic, partition), each group in offset order.

    ``lagging``: assigned (topic, partition)s the broker holds more records of than
    this worker has received (its high watermark is past them): the engine waits for
    them before deciding later records of sibling topics (event-time alignment).
    """

    records: dict[tuple[str, int], list[Any]]  # confluent Message objects
    count: int
    lagging: set[tuple[str, int]] = field(default_factory=set)
    epoch: int = 0  # the subscription it was read under (KafkaPipe.rejoin starts a new one)


@dataclass
class Assigned:
    """Partitions given to this worker, and where consumption resumes in each."""

    partitions: list[tuple[str, int]]
    committed: dict[tuple[str, int], int | None]
    epoch: int = 0


@dataclass
class Revoked:
    """Partitions taken away; ``done`` is set once their work is delivered and committed."""

    partitions: list[tuple[str, int]]
    offsets: list[TopicPartition] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class Delivery:
    """Counts the outputs of one poll until the broker has acknowledged them all."""

    __slots__ = ("pending", "failed", "offsets", "after")

    def __init__(self, offsets: dict[tuple[str, int], int]) -> None:
        self.pending = 0
        self.failed: str | None = None
        self.offsets = offsets  # next offset per (topic, partition) once delivered
        self.after: list[Callable[[], None]] = []  # run once delivered (snapshots)

    def __call__(self, err: KafkaError | None, _msg: Any) -> None:
        self.pending -= 1
        if err is not None and self.failed is None:
            self.failed = str(err)

    @property
    def delivered(self) -> bool:
        return self.pending <= 0


#: The consumer's max.poll.interval.ms, which is also its rebalance timeout: how long a
#: JoinGroup may wait for the group's other members.
MAX_POLL_INTERVAL_MS = 60_000


def _group_protocol_config(settings: Settings) -> dict[str, Any]:
    """How this worker takes part in its consumer group.

    Either way every input topic's partition p lands on one worker: the core of
    partition p needs orders, logins, labels, trades and flow of p together, and a range
    assignment of co-partitioned topics gives exactly that (the classic protocol's
    client-side ``range``; KIP-848's broker-side ``range`` assignor, which keeps it and is
    sticky as well).
    """
    if settings.group_protocol == "consumer":
        # Session and heartbeat are the broker's (group.consumer.*) under KIP-848; the
        # client refuses its own.
        return {"group.protocol": "consumer", "group.remote.assignor": "range"}
    return {"partition.assignment.strategy": "range",
            "session.timeout.ms": (settings.session_timeout_ms
                                   or settings.profile.session_timeout_ms),
            "heartbeat.interval.ms": settings.profile.heartbeat_interval_ms}


#: How long an assignment's broker lookups (committed offsets, low watermarks) are asked
#: again before the poll round gives up and the worker rejoins the group (``_poll_loop``).
LOOKUP_PATIENCE_S = 30.0


def _asking_again(lookup: Callable[[], Any], what: str, stop: threading.Event,
                  patience_s: float = LOOKUP_PATIENCE_S) -> Any:
    """``lookup()``, asked again while the broker cannot answer it yet.

    Right after a broker comes back (a pause, a restart, a broker fenced and unfenced by
    its controller) the partitions it leads are unknown for a moment ("Local: Unknown
    partition") and the group coordinator is still loading; an assignment arrives in that
    moment. The last error is raised after ``patience_s`` (the poll loop then rejoins).
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return lookup()
        except KafkaException as exc:
            if stop.is_set() or time.monotonic() >= deadline:
                raise
            log.info("%s not available yet (%s): asking again", what, exc.args[0])
            stop.wait(0.2)


class Fenced(RuntimeError):
    """This worker's transaction was refused: its partitions belong to another worker now."""


class KafkaPipe:
    """One consumer (in a thread) and one producer for the engine's input and output topics."""

    def __init__(self, settings: Settings, topics: list[str],
                 hand_off: Callable[[Any], Awaitable[None]],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.topics = topics
        # Where polls and markers go, on the loop: it waits while the taker is full
        # (the record-path agent's channel holds two polls), which blocks this thread.
        self.hand_off = hand_off
        self.loop = loop
        self.consumer = clients.group_consumer(
            settings, settings.app_id,
            **_group_protocol_config(settings),
            **{"max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
               "queued.max.messages.kbytes": 65536,
               "on_commit": self._on_commit,
               **({"group.instance.id": settings.group_instance_id}
                  if settings.group_instance_id else {})})
        # Linger from the broker profile; idempotent (per-key order survives retries: a
        # halt and its release are never swapped).
        self.transactional = settings.exactly_once
        # A transaction left open by a paused worker holds back every read_committed reader
        # of the partitions it wrote to, until the coordinator aborts it: its timeout is the
        # session's, so it ends about when the worker's partitions move.
        session_ms = settings.session_timeout_ms or settings.profile.session_timeout_ms
        extra = ({"transactional.id": f"{settings.app_id}-{uuid.uuid4().hex[:12]}",
                  "transaction.timeout.ms": session_ms} if self.transactional else {})
        self._producer_config = {"batch.num.messages": 10_000,
                                 "queue.buffering.max.messages": 1_000_000, **extra}
        self.producer = clients.producer(settings, **self._producer_config)
        self._in_txn = False
        self._txn_offsets: dict[tuple[str, int], int] = {}
        self._txn_after: list[Callable[[], None]] = []
        self._commits: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: deque[Delivery] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="tradeguard-consumer",
                                        daemon=True)
        self.assignment: set[tuple[str, int]] = set()
        self.positions: dict[tuple[str, int], int] = {}
        self._received: dict[tuple[str, int], int] = {}  # next offset not yet handed over
        self.high_watermarks: dict[tuple[str, int], int] = {}  # as the last fetch saw them
        # The consumer's own position: past transaction markers, which take an offset but
        # are never handed over (a transactional producer writes one per commit).
        self.consumed: dict[tuple[str, int], int] = {}
        self._was_lagging = False
        # Offsets this worker's commits were acknowledged at (consumer thread writes, the
        # loop reads at an assignment): a partition given back whose committed offsets are
        # all still ours was moved on by nobody (``PartitionState.resumable``).
        self.acked: dict[tuple[str, int], int] = {}
        self.epoch = 0  # subscriptions so far: markers and polls carry the one they came from
        self._rejoin = threading.Event()
        # Since when this worker has held nothing after giving its partitions up (None:
        # it holds an assignment, or never had one). A join can be lost: on Apache Kafka
        # 4.1 with librdkafka 2.12, a group coordinator unloaded while this worker's
        # JoinGroup waited (a broker fenced after a pause) left the worker out of the
        # group for good (benchmarks/faults.py, stop_broker: 2 runs in 5). A join waits
        # at most the rebalance timeout (max.poll.interval.ms) for the other members; a
        # session past that with no assignment at all (an empty one counts), the join
        # was lost, and the worker joins again.
        self._unassigned_since: float | None = None
        # The assignment was lost with the session (on_lost) and none has come since: no
        # commit can succeed, and a failed one costs the next join a session (_on_lost).
        self._lost = False
        # Offsets this worker's commits carried that no answer has confirmed yet, per
        # partition: a commit sent before a broker pause can land while its answer is lost
        # with the session. The group's committed offset found equal to one of them at the
        # next assignment is this worker's own (``_on_assign``), as an acknowledged one is.
        self._sent: dict[tuple[str, int], set[int]] = {}
        self.stuck_join_s = (MAX_POLL_INTERVAL_MS + session_ms) / 1000
        #: Poll rounds that raised and were answered by a rejoin (``_poll_loop``).
        self.poll_failures = 0
        #: librdkafka's fatal error, once one came (``polling``).
        self.fatal: str | None = None

    # -- consumer thread -------------------------------------------------------------------

    def start(self) -> None:
        if self.transactional:
            # A unique transactional id per process: fencing comes from the consumer
            # group's generation sent with the offsets (KIP-447), not from the id.
            self.producer.init_transactions(30)
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._thread.start()

    @property
    def polling(self) -> bool:
        """False once the consumer cannot poll any more while the worker runs (liveness):
        its thread ended, or librdkafka raised a fatal error, after which the handle is
        unusable and only a new process recovers (Kubernetes restarts the pod)."""
        if self.fatal is not None:
            return False
        return self._stop.is_set() or not self._thread.ident or self._thread.is_alive()

    def _fatal(self, error: KafkaError) -> None:
        if self.fatal is None:
            self.fatal = str(error)
            log.error("the consumer hit a fatal error and can read nothing more; liveness "
                      "now fails so that the worker is restarted: %s", error)

    def _put(self, item: Any) -> None:
        """Hand an item to the event loop; blocks while the agent is two polls behind.

        One put per item, waited on until it lands or we stop: a put given up after a
        timeout may still have landed (its completion waits for the loop, which a long
        step holds), and putting again handed the same poll over twice.
        """
        future = asyncio.run_coroutine_threadsafe(self.hand_off(item), self.loop)
        while not self._stop.is_set():
            try:
                future.result(timeout=1.0)
                return
            except TimeoutError:
                continue
            except RuntimeError:  # the loop is gone: we are shutting down
                return
        future.cancel()

    def _poll_loop(self) -> None:
        """Poll until stopped. Nothing ends this thread but ``close``: a silent worker that
        looks alive is the worst failure a gateway can meet.

        An exception out of one round (a rebalance callback's broker lookup that failed past
        its retries, a librdkafka error) is logged, and the worker leaves the group and joins
        it again: the group hands its partitions back (to it or another worker) through the
        ordinary revoke and assign, from the committed offsets. Before this, one such error
        (``get_watermark_offsets``: "Unknown partition", raised out of ``_on_assign`` while a
        paused broker fenced and unfenced itself) ended the thread, and the worker decided
        nothing more while its liveness said it was fine.
        """
        while not self._stop.is_set():
            try:
                self._poll_round()
            except Exception as exc:  # noqa: BLE001 - see the docstring: never end the thread
                if self._stop.is_set():
                    break
                error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
                if isinstance(error, KafkaError) and error.code() == KafkaError._FATAL:
                    self._fatal(error)
                    self._stop.wait(1.0)  # nothing to rejoin with: wait for the restart
                    continue
                self.poll_failures += 1
                log.exception("consumer poll failed (%d so far): leaving the group and "
                              "joining it again", self.poll_failures)
                try:
                    self._resubscribe()
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("rejoining the group failed; trying again")
                self._stop.wait(0.5)  # a broker still recovering: do not spin on it

    def _poll_round(self) -> None:
        """One round: commits due, one poll, its records handed to the engine."""
        consumer, n = self.consumer, self.settings.poll_max
        if self._rejoin.is_set():
            self._rejoin.clear()
            self._resubscribe()
        since = self._unassigned_since
        if since is not None and time.monotonic() - since > self.stuck_join_s:
            log.warning("no partitions assigned %.0fs after giving them up: the join "
                        "looks lost, joining the group again", time.monotonic() - since)
            self._unassigned_since = time.monotonic()
            self._resubscribe()
        self._commit_ready()
        first = consumer.poll(0.05)
        if first is None:
            # Records known to exist but not here yet, or that just cleared: tell the
            # engine, which may hold records back until they arrive.
            lagging = self._lagging()
            if lagging or self._was_lagging:
                self._put(Poll({}, 0, lagging, self.epoch))
            self._was_lagging = bool(lagging)
            return
        # Then whatever else is already fetched, without waiting for more.
        messages = [first] + consumer.consume(n - 1, 0) if n > 1 else [first]
        grouped: dict[tuple[str, int], list[Any]] = {}
        count = 0
        for msg in messages:
            if msg.error() is not None:
                if msg.error().code() == KafkaError._FATAL:
                    self._fatal(msg.error())
                elif msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error())
                continue
            grouped.setdefault((msg.topic(), msg.partition()), []).append(msg)
            count += 1
        for tp, group in grouped.items():
            self._received[tp] = group[-1].offset() + 1
        if count:
            lagging = self._lagging()
            self._was_lagging = bool(lagging)
            self._put(Poll(grouped, count, lagging, self.epoch))

    def rejoin(self) -> None:
        """Leave the group and join it again from the committed offsets (loop side).

        After a refused transaction: what was read since the last commit is read again by
        whoever owns it now, this worker included; polls read before carry an older epoch.
        """
        self._rejoin.set()

    def _resubscribe(self) -> None:
        self.epoch += 1
        self.consumer.unsubscribe()  # the revoke callback runs at the next poll
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)

    def _lagging(self) -> set[tuple[str, int]]:
        """Assigned partitions whose last fetch showed records beyond what was handed over.

        Also keeps each partition's high watermark for the metrics (``high_watermarks``):
        the consumer is only ever called from this thread (librdkafka calls from the event
        loop can block it while this thread polls).
        """
        out = set()
        assigned = list(self.assignment)
        try:
            positions = self.consumer.position([TopicPartition(*tp) for tp in assigned])
        except KafkaException:
            positions = []
        for tp in positions:
            key = (tp.topic, tp.partition)
            if tp.offset >= 0 and key in self._received:
                # Everything before the position has been handed over: markers skipped too.
                self._received[key] = max(self._received[key], tp.offset)
                self.consumed[key] = self._received[key]
        for tp in assigned:
            try:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
            except KafkaException:
                continue
            if high is not None and high >= 0:
                self.high_watermarks[tp] = high
            received = self._received.get(tp)
            if received is not None and high is not None and high > received:
                out.add(tp)
        return out

    def _commit_ready(self, asynchronous: bool = True) -> None:
        while True:
            try:
                offsets = self._commits.get_nowait()
            except queue.Empty:
                return
            if self._lost:  # no generation to commit in: see _on_lost
                log.info("offset commit dropped: the assignment was lost with the session")
                continue
            try:
                for tp in offsets:
                    self._sent.setdefault((tp.topic, tp.partition), set()).add(tp.offset)
                done = self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
                if not asynchronous:  # an asynchronous one is acknowledged in _on_commit
                    self._acked(done)
            except KafkaException as exc:  # e.g. during a rebalance; the next one covers it
                log.warning("offset commit failed: %s", exc)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is None:
            self._acked(partitions)

    def _acked(self, partitions: list[TopicPartition] | None) -> None:
        for tp in partitions or ():
            if tp.error is None and tp.offset >= 0:
                key = (tp.topic, tp.partition)
                self.acked[key] = tp.offset
                sent = self._sent.get(key)
                if sent:  # what this answer confirms, or made stale, is not pending any more
                    sent.difference_update([o for o in sent if o <= tp.offset])

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._stop.is_set():
            # An assignment that lands while close() leaves the group: nothing will decide
            # these partitions here, and the handle being destroyed refuses the lookups
            # below (CI saw "Failed to get committed offsets: Local: Broker handle destroyed
            # for termination" raised out of close(), and a SIGTERMed worker exit 1).
            return
        tps = [(tp.topic, tp.partition) for tp in partitions]
        committed = {}
        if partitions:
            for tp in _asking_again(lambda: consumer.committed(partitions, timeout=10),
                                    "the committed offsets", self._stop):
                key = (tp.topic, tp.partition)
                committed[key] = tp.offset if tp.offset >= 0 else None
                if committed[key] is None:
                    low, _ = _asking_again(
                        lambda tp=tp: consumer.get_watermark_offsets(tp, timeout=5),
                        f"the low watermark of {tp.topic}[{tp.partition}]", self._stop)
                    self._received[key] = max(low, 0)
                else:
                    self._received[key] = committed[key]
                    if committed[key] in self._sent.get(key, ()):
                        # A commit of ours whose answer never came (lost with the session)
                        # landed: the group's offset is still this worker's own.
                        self._acked([TopicPartition(tp.topic, tp.partition, committed[key])])
        self.assignment |= set(tps)
        self._unassigned_since = None
        self._lost = False
        self._put(Assigned(tps, committed, self.epoch))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost with the session (the coordinator unreachable past it, or a broker
        paused): handed back to the engine as a revoke is, but nothing is committed.

        This member's generation is gone, so a commit can only fail ("Unknown member"), and
        librdkafka answers that failure by joining again, abandoning the member id its
        JoinGroup had just been given: the coordinator then waits a whole session for that
        orphan before the group forms. On Apache Kafka after a 10 s broker pause that was
        the first decision 4.9 s after SIGCONT, 6.0 s of it the JoinGroup (librdkafka's
        cgrp debug log). The offsets not committed are not lost work: a partition given back
        resumes with its parked core and skips what it decided (``PartitionState``), and one
        given to another worker is decided again there, as at least once allows.
        """
        self._lost = True
        self._on_revoke(consumer, partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        marker = Revoked([(tp.topic, tp.partition) for tp in partitions])
        self._put(marker)
        # Wait until the engine has decided everything polled before the revoke and
        # its outputs are delivered; then commit them before the partitions move.
        while not marker.done.wait(0.1):
            if self._stop.is_set():
                break
        if marker.offsets and not self._lost:
            try:
                self._acked(consumer.commit(offsets=marker.offsets, asynchronous=False))
            except KafkaException as exc:
                log.warning("commit on revoke failed: %s", exc)
        self.assignment -= set(marker.partitions)
        for tp in marker.partitions:
            self._received.pop(tp, None)
            self.consumed.pop(tp, None)
        if not self.assignment:
            self._unassigned_since = time.monotonic()

    # -- event loop side -------------------------------------------------------------------

    def produce(self, topic: str, key: bytes, value: bytes, delivery: Delivery,
                partition: int | None = None, headers: list | None = None) -> None:
        """Queue one output; ``partition`` pins it (else murmur2 of the key decides)."""
        delivery.pending += 1
        self._begin()
        extra = {} if partition is None else {"partition": partition}
        if headers:
            extra["headers"] = headers
        self._queue(topic, key, value, delivery, extra)

    def produce_many(self, topic: str, keys: list[str], values: list[bytes],
                     delivery: Delivery) -> None:
        """Queue outputs keyed by ``keys`` (murmur2 partitions), ``produce`` for each in one loop.

        The decisions and flow of a step go out here: the per-record cost is librdkafka's
        alone, not a Python call per record on top; only a full local queue or a fatal
        producer takes the slow path (``_queue``).
        """
        if not values:
            return
        self._begin()
        delivery.pending += len(values)
        produce = self.producer.produce
        for key, value in zip(keys, values):
            try:
                produce(topic, value, key.encode(), on_delivery=delivery)
            except (BufferError, KafkaException):
                self._queue(topic, key.encode(), value, delivery, {})

    def _queue(self, topic: str, key: bytes, value: bytes, delivery: Delivery,
               extra: dict[str, Any]) -> None:
        """librdkafka's produce, waiting out a full local queue; a fatal producer (transactions)
        is abandoned, and its error raised for the step to start over."""
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=delivery, **extra)
                return
            except BufferError:  # local queue full: let librdkafka drain it
                self.poll_producer(0.01)
            except KafkaException as exc:
                if not self.transactional:
                    raise
                raise self._abandon(exc.args[0].str()) from None

    def produce_raw(self, topic: str, key: bytes, value: bytes) -> None:
        """An output no poll waits for (snapshot chunks); in the open transaction, if any."""
        self._begin()
        while True:
            try:
                self.producer.produce(topic, value, key)
                return
            except BufferError:
                self.poll_producer(0.01)
            except KafkaException as exc:
                if not self.transactional:
                    raise
                raise self._abandon(exc.args[0].str()) from None

    def _begin(self) -> None:
        if self.transactional and not self._in_txn:
            self.producer.begin_transaction()
            self._in_txn = True

    def track(self, delivery: Delivery) -> None:
        """Queue a poll's offsets for commit once its outputs are delivered."""
        if self.transactional:  # they commit with the transaction its outputs are in
            self._txn_offsets.update(delivery.offsets)
            self._txn_after += delivery.after
            if delivery.offsets or delivery.after:
                self._begin()
        else:
            self._pending.append(delivery)
        self.poll_producer()

    def commit_transaction(self, offsets: list[TopicPartition] | None = None,
                           timeout_s: float = 30.0) -> None:
        """Commit the open transaction: its outputs and the input offsets they account for.

        Raises ``Fenced`` when the group has moved on (this worker is a zombie): the
        transaction is aborted, so nothing it produced is ever read.
        """
        if not self.transactional:
            return
        for tp in offsets or ():
            self._txn_offsets[(tp.topic, tp.partition)] = tp.offset
        if not self._in_txn and self._txn_offsets:
            self._begin()
        if not self._in_txn:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in self._txn_offsets.items()]
        deadline = time.monotonic() + timeout_s
        steps = ([lambda t: self.producer.send_offsets_to_transaction(
                     tps, self.consumer.consumer_group_metadata(), t)] if tps else [])
        steps.append(lambda t: self.producer.commit_transaction(t))
        for step in steps:
            while True:
                try:
                    step(max(deadline - time.monotonic(), 1.0))
                    break
                except KafkaException as exc:
                    err = exc.args[0]
                    # A slow or briefly unreachable coordinator: the same call may be made
                    # again (librdkafka's transactional API); anything else ends the txn.
                    if err.retriable() and not err.txn_requires_abort() and not err.fatal() \
                            and time.monotonic() < deadline:
                        log.warning("transaction commit: %s; trying again", err.str())
                        continue
                    raise self._abandon(err.str(), timeout_s) from None
        self._in_txn = False
        self._txn_offsets.clear()
        after, self._txn_after = self._txn_after, []
        for action in after:
            action()
        if self._in_txn:  # what the actions produced (snapshot chunks) commits now too
            self.commit_transaction(timeout_s=timeout_s)

    def _abandon(self, why: str, timeout_s: float = 30.0) -> Fenced:
        """Abort the open transaction and start over with a new producer; the error to raise.

        Also after a step that raised half-way (``EngineService.step_failed``): what it
        produced is never read.

        A new producer every time: after a refused commit librdkafka may turn the old one
        fatal a moment later (a transactional call in an invalid state), and a fatal
        producer can never commit again.
        """
        try:
            self.producer.abort_transaction(min(timeout_s, 5.0))
        except KafkaException:
            pass  # aborted by the coordinator already, or a fatal producer: replaced below
        self._in_txn = False
        self._txn_offsets.clear()
        self._txn_after.clear()
        old, self.producer = self.producer, clients.producer(self.settings,
                                                             **self._producer_config)
        old.purge()
        self.producer.init_transactions(timeout_s)
        return Fenced(f"transaction refused, outputs aborted: {why}")

    def poll_producer(self, timeout_s: float = 0) -> None:
        """Serve delivery reports; a fatal transactional error becomes ``Fenced``."""
        try:
            self.producer.poll(timeout_s)
        except KafkaException as exc:
            if not self.transactional:
                raise
            raise self._abandon(exc.args[0].str()) from None

    def commit_delivered(self) -> int:
        """Commit the offsets of the leading run of fully delivered polls; how many."""
        if self.transactional:
            self.commit_transaction()
            return 0
        self.producer.poll(0)
        latest: dict[tuple[str, int], int] = {}
        done = 0
        while self._pending and self._pending[0].delivered:
            delivery = self._pending.popleft()
            if delivery.failed is not None:
                # librdkafka retried and gave up: these offsets must not be committed,
                # and later ones neither. Crash; the restart redoes them.
                raise KafkaException(f"output not delivered: {delivery.failed}")
            latest.update(delivery.offsets)
            for action in delivery.after:
                action()
            done += 1
        if latest:
            self._commits.put([TopicPartition(t, p, o) for (t, p), o in latest.items()])
        return done

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until every output produced so far is delivered, then commit."""
        if self.transactional:  # committing a transaction flushes it
            self.commit_transaction(timeout_s=timeout_s)
            return
        await self.loop.run_in_executor(None, self.producer.flush, timeout_s)
        self.commit_delivered()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._commit_ready()
        try:
            self.consumer.close()
        except RuntimeError:
            pass
        except KafkaException as exc:  # leaving the group failed: a stop is still a stop
            log.warning("consumer close: %s", exc)

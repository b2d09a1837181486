"""The console's one Kafka reader: the engine's topics into the view, on a background thread.

Manual partition assignment (no consumer group: a console only watches, and a
group join costs seconds on the embedded broker) and short fetch waits.
Compacted control topics are read from the beginning; the live topics from
``lookback_s`` back; the audit trail from ``audit_lookback_s`` back. A record
that does not decode or whose nested parts are not as typed
(:mod:`tradeguard.console.leaves`), and a control or audit record without a
valid signature (streams/signing.py), is counted per topic and logged with its
position, never silently dropped, and never stops the feed. A feed that stops
(a topic deleted, the broker gone for good) says why in ``error``, and the
console's ``/readyz`` fails.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException,
                             TopicPartition)

from streams.schema import RecordError
from streams.signing import CONTROL_TOPICS, ControlKeys, check
from streams.topics import (AUDIT, AUTH_EVENTS, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DECISIONS,
                            FEEDBACK, MARKET_TRADES, ORDERS, topic)
from tradeguard.console.leaves import check_leaves
from tradeguard.console.view import ConsoleView
from tradeguard.kafka import clients
from tradeguard.runtime.settings import Settings

__all__ = ["ConsoleFeed", "FEED_TOPICS"]

log = logging.getLogger("tradeguard.console")

#: Records the console uses only when signed: controls (it shows and guards what the engine
#: enforces) and audit records (the trail, and the proposals a second operator approves).
SIGNED = (*CONTROL_TOPICS, AUDIT)
#: Errors that mean a topic or partition is gone: the feed stops and says so.
_GONE = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION)

#: What the console reads, and from how far back: "all", "live" or "audit".
FEED_TOPICS = {CONTROLS_TICKERS: "all", CONTROLS_ACCOUNTS: "all", AUDIT: "audit",
               DECISIONS: "live", ORDERS: "live", AUTH_EVENTS: "live",
               MARKET_TRADES: "live", FEEDBACK: "live"}


class ConsoleFeed:
    """Reads :data:`FEED_TOPICS` into ``view`` under ``lock`` until :meth:`stop`."""

    def __init__(self, settings: Settings, view: ConsoleView, lock: threading.Lock, *,
                 lookback_s: float = 900.0, audit_lookback_s: float = 7 * 86400.0,
                 batch: int = 2_000) -> None:
        self.settings, self.view, self.lock = settings, view, lock
        self.lookback_s, self.audit_lookback_s, self.batch = lookback_s, audit_lookback_s, batch
        self.caught_up = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-feed", daemon=True)
        self._names = {settings.topic(n): n for n in FEED_TOPICS}
        self.keys = ControlKeys.from_settings(settings)

    def start(self) -> "ConsoleFeed":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _consumer(self) -> Consumer:
        return clients.reader(self.settings, "console")

    def _assign(self, consumer: Consumer) -> list[TopicPartition]:
        metadata = consumer.list_topics(timeout=10)
        now_ms = int(time.time() * 1000)
        since = {"live": now_ms - int(self.lookback_s * 1000),
                 "audit": now_ms - int(self.audit_lookback_s * 1000)}
        parts, timed = [], []
        for full, name in self._names.items():
            meta = metadata.topics.get(full)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KafkaException(f"topic {full} does not exist: run `tradeguard topics create`")
            for p in meta.partitions:
                if FEED_TOPICS[name] == "all":
                    parts.append(TopicPartition(full, p, OFFSET_BEGINNING))
                else:
                    timed.append(TopicPartition(full, p, since[FEED_TOPICS[name]]))
        if timed:
            for tp in consumer.offsets_for_times(timed, timeout=10):
                # -1: nothing as recent as that; start at the end.
                parts.append(TopicPartition(tp.topic, tp.partition,
                                            tp.offset if tp.offset >= 0 else OFFSET_END))
        consumer.assign(parts)
        return parts

    @property
    def alive(self) -> bool:
        """Reading: started, not stopped, and not dead of an error."""
        return self._thread.is_alive() and self.error is None

    def _run(self) -> None:
        try:
            consumer = self._consumer()
        except KafkaException as exc:
            self.error = f"cannot create the Kafka consumer: {exc}"
            log.error("console feed: %s", self.error)
            return
        try:
            ends = {}  # partitions with something to read at start -> their end offset
            for tp in self._assign(consumer):
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if tp.offset != OFFSET_END and high > max(low, tp.offset):
                    ends[(tp.topic, tp.partition)] = high
            while not self._stop.is_set():
                messages = consumer.consume(self.batch, 0.1)
                self._absorb(messages)
                if not self.caught_up.is_set() and not messages:
                    # Past the end offsets and a fetch came back empty (Tansu reports end
                    # offsets that can lag the true end).
                    positions = consumer.position([TopicPartition(t, p) for t, p in ends])
                    if all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions):
                        self.caught_up.set()
        except KafkaException as exc:
            self.error = str(exc)
            log.error("console feed stopped: %s", exc)
        except Exception as exc:  # never die silently: /readyz reports it
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("console feed failed")
        finally:
            consumer.close()

    def _absorb(self, messages) -> None:
        decoded = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() in _GONE:
                    raise KafkaException(f"{msg.topic() or 'a topic'} is gone ({err.str()}): "
                                         "recreate it with `tradeguard topics create` and "
                                         "restart the console")
                continue  # partition EOF and transient errors: nothing to decode
            name = self._names[msg.topic()]
            try:
                record = topic(name).schema.decode(msg.value())
                check_leaves(name, record)
                if name in SIGNED:  # what the engine ignores, the console must not show
                    check(orjson.loads(msg.value()), self.keys)  # as signed, not as decoded
                decoded.append((name, record, msg))
            except RecordError as exc:
                self._skip(name, msg, exc)
        if decoded:
            now_ms = int(time.time() * 1000)
            with self.lock:
                for name, record, msg in decoded:
                    try:
                        self.view.absorb(name, record, now_ms)
                    except Exception as exc:  # a record no check foresaw: skipped, not fatal
                        self._skip(name, msg, exc)

    def _skip(self, name: str, msg, exc: Exception) -> None:
        self.view.rejected[name] += 1
        log.error("console: skipped a bad %s record at %d@%d: %s", name, msg.partition(),
                  msg.offset(), exc)

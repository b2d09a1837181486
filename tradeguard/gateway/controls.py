"""The gateway's own copy of the compacted control topics, kept by one thread.

``controls.tickers`` (halt_buys / release per ticker) and ``controls.accounts``
(step_up / freeze / release per account) are read from the beginning, every
partition by manual assignment, into a :class:`ControlBoard`, so the gateway
enforces halts and freezes even while the engine is slow or down. A record that
breaks the contract is logged and counted, and changes nothing.

The gateway holds the control key (``TRADEGUARD_CONTROL_KEY_FILE``) and, as the
engine does (streams/signing.py, docs/security.md), refuses unsigned and forged
records, tombstones included, and signed records that do not follow the one in
force (``seq``: a replayed release cannot end a newer freeze). Without a key it
refuses to start, unless ``TRADEGUARD_TRUST_UNSIGNED_CONTROLS`` says to enforce
whatever is written, in arrival order (a tombstone then ends its key's control).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from streams.records import ACCOUNT_CONTROL, TICKER_CONTROL
from streams.schema import RecordError
from streams.signing import ControlKeys, ReplayError, unsigned_or_forged
from streams.topics import CONTROLS_ACCOUNTS, CONTROLS_TICKERS
from tradeguard.kafka.errors import BrokerError
from tradeguard.kafka import clients as kafka
from tradeguard.gateway.decision import Verdict, control_verdict
from tradeguard.gateway.metrics import GatewayMetrics
from tradeguard.runtime.settings import Settings
from tradeguard.core.board import REPLAYED, UNSEQUENCED, ControlBoard

__all__ = ["ControlsReplica", "gateway_keys"]

log = logging.getLogger("tradeguard.gateway.controls")

_TOPICS = {CONTROLS_TICKERS: (TICKER_CONTROL, "ticker"),
           CONTROLS_ACCOUNTS: (ACCOUNT_CONTROL, "account_id")}


def gateway_keys(settings: Settings) -> ControlKeys | None:
    """The keys a gateway checks controls with; None where told to trust unsigned ones.

    Fails safe: no key and no explicit trust is a refusal to start, naming both settings.
    """
    if settings.control_key_file:
        return ControlKeys.from_file(settings.control_key_file)
    if settings.trust_unsigned_controls:
        log.warning("TRADEGUARD_TRUST_UNSIGNED_CONTROLS: this gateway enforces any halt, freeze "
                    "or release anyone who can write controls.* writes")
        return None
    raise ValueError("no control key: set TRADEGUARD_CONTROL_KEY_FILE (the key that signs "
                     "controls) so forged and replayed controls are refused, or, only where "
                     "Kafka ACLs keep controls.* safe, TRADEGUARD_TRUST_UNSIGNED_CONTROLS=1")


class ControlsReplica:
    """Latest control per ticker and account, readable from any thread."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.board = ControlBoard()
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._names = {settings.topic(n): n for n in _TOPICS}
        self.keys = gateway_keys(settings)  # None only where unsigned controls are trusted
        self._consumer = kafka.reader(settings, "gateway-controls")
        self._ends: dict[tuple[str, int], int] = {}
        self._thread = threading.Thread(target=self._run, name="tradeguard-gateway-controls",
                                        daemon=True)

    def start(self, timeout_s: float) -> None:
        """Assign every partition from the beginning; return once read to the end."""
        parts = []
        for full, name in self._names.items():
            ids = kafka.partitions(self._consumer, self.settings, name)
            for p, end in kafka.end_offsets(self._consumer, full, ids).items():
                if end > 0:
                    self._ends[(full, p)] = end
            parts += [TopicPartition(full, p, OFFSET_BEGINNING) for p in ids]
        self._consumer.assign(parts)
        self._thread.start()
        if not self.ready.wait(timeout_s):
            self.close()
            raise BrokerError(f"could not read {sorted(self._names)} to their end within "
                              f"{timeout_s:g}s ({len(self._ends)} partitions still behind)")

    def verdict(self, order: Mapping[str, Any], now_ms: int) -> Verdict | None:
        """What the controls in force require of ``order`` (None: nothing applies)."""
        with self._lock:
            return control_verdict(self.board, order, now_ms)

    def close(self) -> None:
        """Stop the thread and the consumer. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.2)
            if msg is None:
                if self._ends:  # a transaction's commit marker takes the last offset and is
                    self._passed_markers()  # never handed over: the position passes it
                # Caught up: past the reported ends *and* a fetch came back empty (the
                # embedded broker reports ends short of the true end).
                if not self.ready.is_set() and not self._ends:
                    self.ready.set()
                    self.metrics.controls_ready.set(1)
                continue
            for m in [msg, *self._consumer.consume(1000, 0)]:
                self._absorb(m)

    def _passed_markers(self) -> None:
        try:
            positions = self._consumer.position([TopicPartition(*tp) for tp in self._ends])
        except KafkaException:
            return
        for tp in positions:
            if tp.offset >= self._ends.get((tp.topic, tp.partition), 1 << 62):
                del self._ends[(tp.topic, tp.partition)]

    def _absorb(self, msg) -> None:
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("reading %s: %s", msg.topic(), msg.error())
            return
        name = self._names[msg.topic()]
        ends_key = (msg.topic(), msg.partition())
        if ends_key in self._ends and msg.offset() + 1 >= self._ends[ends_key]:
            del self._ends[ends_key]
        schema, key_field = _TOPICS[name]
        try:
            if self.keys is not None:  # a gateway that holds the control key checks it
                refused = unsigned_or_forged([msg.value()], self.keys)
                if refused:
                    raise refused[0][1]
            if msg.value() is None:  # tombstone (trusted mode only): the control is gone
                key = (msg.key() or b"").decode("utf-8")
                if not key:
                    raise RecordError("tombstone without a key")
                record = {key_field: key, "action": "release"}
            else:
                record = schema.decode(msg.value())
        except (RecordError, UnicodeDecodeError) as exc:
            self.metrics.invalid_records.labels(topic=name).inc()
            log.error("ignoring %s record at partition %d offset %d: %s", name,
                      msg.partition(), msg.offset(), exc)
            return
        with self._lock:
            if self.keys is None:  # trusted mode: arrival order, whatever carries no seq
                verdict = (self.board.apply_ticker if name == CONTROLS_TICKERS
                           else self.board.apply_account)(record)
            else:
                verdict = (self.board.accept_ticker if name == CONTROLS_TICKERS
                           else self.board.accept_account)(record)
        if verdict in (REPLAYED, UNSEQUENCED):
            self.metrics.invalid_records.labels(topic=name).inc()
            log.error("refused %s record at partition %d offset %d: %s", name, msg.partition(),
                      msg.offset(), ReplayError(verdict))
            return
        self.metrics.control_records.labels(topic=name).inc()
        log.debug("%s %s: %s", name, record[key_field], record["action"])

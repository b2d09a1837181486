"""The gateway client: send an order, get the engine's decision within a deadline, or a fallback.

>>> with GatewayClient(settings, mode="fail_closed") as gateway:       # doctest: +SKIP
...     decision = gateway.submit(order, deadline_ms=20)
...     if decision.action != "allow":
...         reject_or_hold(order, decision.reasons)

``submit`` produces the order to ``orders`` (key account_id, murmur2 like Java)
and waits for the engine's decision on ``decisions``, read by one thread of
the client that correlates by order_id. The answer is a
:class:`~tradeguard.gateway.decision.GatewayDecision`: the engine's decision
with every field it carried, unless a control held at the gateway is stricter,
or, past the deadline, the fallback of the configured mode (``decided_by`` is
then ``"gateway"``). ``submit_async`` is the same for asyncio. One client is
safe to share between threads and tasks; it starts one thread for decisions and
one for the control topics.

A late engine decision for an order the gateway already answered is matched
too: when its action differs, ``on_late_disagreement`` is called (on the
decisions thread; keep it short) with a
:class:`~tradeguard.gateway.decision.LateDisagreement`, and
``tradeguard_gateway_late_disagreements_total`` counts it. See docs/gateway.md.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

import orjson
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.codec import encode_key, encode_value
from streams.records import DECISION, ORDER
from streams.schema import RecordError
from streams.topics import DECISIONS, ORDERS
from tradeguard.kafka import clients as kafka
from tradeguard.gateway.controls import ControlsReplica, gateway_keys
from tradeguard.gateway.decision import (FAIL_MODES, GatewayDecision, LateDisagreement,
                                         control_answer, engine_answer, fallback, severity)
from tradeguard.gateway.ledger import Ledger, Slot
from tradeguard.gateway.metrics import GatewayMetrics
from tradeguard.runtime.settings import Settings

__all__ = ["GatewayClient"]

log = logging.getLogger("tradeguard.gateway")


def _now_ms() -> int:
    return int(time.time() * 1000)


class GatewayClient:
    """Submit orders to the engine with a deadline; see the module docstring."""

    def __init__(self, settings: Settings, *, mode: str,
                 on_late_disagreement: Callable[[LateDisagreement], None] | None = None,
                 reconcile_s: float = 300.0, remember: int = 200_000,
                 producer_config: Mapping[str, Any] | None = None) -> None:
        if mode not in FAIL_MODES:
            raise ValueError(f"mode must be one of {sorted(FAIL_MODES)}, got {mode!r}")
        gateway_keys(settings)  # fail safe: no key, no explicit trust of unsigned controls
        self.settings = settings
        self.mode = mode
        self.on_late_disagreement = on_late_disagreement
        self.metrics = GatewayMetrics()
        self._ledger: Ledger[GatewayDecision] = Ledger(remember=remember,
                                                       reconcile_s=reconcile_s)
        self._producer_config = dict(producer_config or {})
        self._orders_topic = settings.topic(ORDERS)
        self._decisions_topic = settings.topic(DECISIONS)
        self._stop = threading.Event()
        self._started = False
        self._producer = None
        self._consumer = None
        self._controls: ControlsReplica | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> "GatewayClient":
        """Connect, read the control topics to their end, start reading decisions from now."""
        if self._started:
            return self
        self._stop.clear()
        self._controls = ControlsReplica(self.settings, self.metrics)
        self._consumer = kafka.reader(self.settings, "gateway-decisions")
        try:
            parts = kafka.partitions(self._consumer, self.settings, DECISIONS, timeout_s)
            kafka.partitions(self._consumer, self.settings, ORDERS, timeout_s)
            # Explicit start offsets rather than OFFSET_END, which is resolved lazily: a
            # decision written before it resolves would be skipped.
            ends = kafka.end_offsets(self._consumer, self._decisions_topic, parts, timeout_s)
            self._consumer.assign([TopicPartition(self._decisions_topic, p, ends[p])
                                   for p in parts])
            self._controls.start(timeout_s)
        except BaseException:
            self._controls.close()
            self._consumer.close()
            raise
        # Delivery reports for failures only: one Python callback per order costs more than
        # the rest of the produce path.
        self._producer = kafka.producer(self.settings, **{"delivery.report.only.error": True,
                                                          **self._producer_config})
        # Connected, with the orders topic's leaders known, before the first order: its
        # latency is not the client's start-up. Best effort: a producer that cannot connect
        # yet is the deadline's business (answered by the mode, counted), not the start's.
        try:
            self._producer.list_topics(self.settings.topic(ORDERS), timeout=min(timeout_s, 5))
        except KafkaException as exc:
            log.warning("gateway producer not connected at start (%s); orders are answered "
                        "by the mode until it is", exc)
        self._thread = threading.Thread(target=self._read_decisions, daemon=True,
                                        name="tradeguard-gateway-decisions")
        self._thread.start()
        self._started = True
        return self

    def close(self, flush_timeout_s: float = 5.0) -> None:
        """Stop both threads and flush the orders still queued. Idempotent."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        self._thread.join(5)
        self._producer.flush(flush_timeout_s)
        self._consumer.close()
        self._controls.close()

    def __enter__(self) -> "GatewayClient":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "GatewayClient":
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # -- submitting -------------------------------------------------------------------------

    def submit(self, order: Mapping[str, Any], deadline_ms: float) -> GatewayDecision:
        """Send ``order``; the engine's decision within ``deadline_ms``, else the fallback."""
        start = time.monotonic()
        woke = threading.Event()
        with self._in_flight(order, deadline_ms, woke.set) as slot:
            deadline = start + deadline_ms / 1000.0
            while not (sent := self._produce(order)) and time.monotonic() < deadline:
                self._producer.poll(0.005)  # local queue full: let librdkafka drain it
            if sent and not self._blocked_by_controls(order):
                woke.wait(max(0.0, deadline - time.monotonic()))
            return self._answer(order, slot, sent, start, deadline_ms)

    async def submit_async(self, order: Mapping[str, Any], deadline_ms: float
                           ) -> GatewayDecision:
        """``submit`` for asyncio: the wait does not block the event loop."""
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        woke = loop.create_future()  # resolved by the decision or by the deadline, first wins
        with self._in_flight(order, deadline_ms, lambda: _wake_in(loop, woke)) as slot:
            deadline = start + deadline_ms / 1000.0
            while not (sent := self._produce(order)) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)  # local queue full; the decisions thread polls
            if sent and not self._blocked_by_controls(order):
                timer = loop.call_later(max(0.0, deadline - time.monotonic()), _resolve, woke)
                try:
                    await woke
                finally:
                    timer.cancel()
            return self._answer(order, slot, sent, start, deadline_ms)

    def counts(self) -> dict[str, int]:
        """Orders waiting for an answer, and gateway answers waiting for the engine's word."""
        return self._ledger.counts()

    @contextmanager
    def _in_flight(self, order: Mapping[str, Any], deadline_ms: float,
                   wake: Callable[[], None]) -> Iterator[Slot]:
        """Check the call, open the order's slot; a submitter that stops early leaves none."""
        self._check(order, deadline_ms)
        slot = self._ledger.open(order["order_id"], wake)
        self.metrics.in_flight.inc()
        try:
            yield slot
        except BaseException:
            if self._ledger.abandon(slot):
                log.warning("submit of order %s stopped before an answer; the engine may "
                            "still decide it", slot.order_id)
            raise
        finally:
            self.metrics.in_flight.dec()

    def _check(self, order: Mapping[str, Any], deadline_ms: float) -> None:
        if not self._started:
            raise RuntimeError("GatewayClient is not started: use `with GatewayClient(...)` "
                               "or call start()")
        if not isinstance(deadline_ms, (int, float)) or not deadline_ms > 0:
            raise ValueError(f"deadline_ms must be a positive number, got {deadline_ms!r}")
        ORDER.validate(order)  # RecordError names the field

    def _produce(self, order: Mapping[str, Any]) -> bool:
        """Queue the order; False while librdkafka's local queue is full."""
        try:
            self._producer.produce(self._orders_topic, key=encode_key(order["account_id"]),
                                   value=encode_value(order), on_delivery=self._on_delivery)
            return True
        except BufferError:
            return False

    def _blocked_by_controls(self, order: Mapping[str, Any]) -> bool:
        """A block from the controls is final: nothing the engine says is stricter."""
        verdict = self._controls.verdict(order, _now_ms())
        return verdict is not None and verdict.action == "block"

    def _answer(self, order: Mapping[str, Any], slot: Slot, sent: bool, start: float,
                deadline_ms: float) -> GatewayDecision:
        """Settle the order: the engine's decision if it is in, else the gateway's own."""
        elapsed_ms = (time.monotonic() - start) * 1000.0
        verdict = self._controls.verdict(order, _now_ms())
        if verdict is not None and verdict.action == "block":
            own = control_answer(order, verdict, elapsed_ms)
        else:
            own = fallback(order, self.mode, deadline_ms, verdict, elapsed_ms)
        record = self._ledger.close(slot, own if sent else None)
        if not sent:
            self.metrics.produce_errors.inc()
            log.error("order %s not sent: the producer's local queue stayed full until the "
                      "deadline (is the broker reachable?)", order["order_id"])
        if record is not None:
            decision = engine_answer(order, record, verdict, elapsed_ms)
            self.metrics.round_trip.observe(elapsed_ms / 1000.0)
        else:
            decision = own
            if own.fallback is not None:
                self.metrics.timeouts.inc()
                self.metrics.fallbacks.labels(mode=own.fallback, action=own.action).inc()
        base = (record["action"] if record is not None
                else FAIL_MODES[self.mode] if own.fallback is not None else None)
        if verdict is not None and (base is None or severity(verdict.action) > severity(base)):
            self.metrics.control_overrides.labels(reason=verdict.reasons[0]["code"]).inc()
        if decision.decided_by == "gateway":
            if log.isEnabledFor(logging.INFO):
                log.info("gateway decision %s", orjson.dumps(decision.as_dict()).decode())
        self.metrics.decisions.labels(decided_by=decision.decided_by,
                                      action=decision.action).inc()
        return decision

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.metrics.produce_errors.inc()
            log.error("order not delivered to %s: %s", self._orders_topic, err)

    # -- the decisions thread ---------------------------------------------------------------

    def _read_decisions(self) -> None:
        last_sweep = time.monotonic()
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)
            if msg is not None:
                for m in [msg, *self._consumer.consume(1000, 0)]:
                    self._absorb(m)
            self._producer.poll(0)  # delivery reports
            if time.monotonic() - last_sweep >= 1.0:
                last_sweep = time.monotonic()
                self._sweep()

    def _absorb(self, msg) -> None:
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("reading %s: %s", self._decisions_topic, msg.error())
            return
        try:
            record = orjson.loads(msg.value())
            if not isinstance(record, dict) or not isinstance(record.get("order_id"), str):
                raise RecordError("expected a JSON object with a string order_id")
        except (orjson.JSONDecodeError, TypeError, RecordError) as exc:
            self._invalid(msg, exc)
            return
        delivery = self._ledger.deliver(record, check=_usable)
        if delivery.kind == "invalid":
            self._invalid(msg, delivery.error)
        elif delivery.kind == "duplicate":
            self.metrics.duplicates.inc()
        elif delivery.kind == "late":
            self._reconcile(delivery.gateway_answer, record)

    def _invalid(self, msg, error: Exception) -> None:
        self.metrics.invalid_records.labels(topic=DECISIONS).inc()
        log.error("ignoring decisions record at partition %d offset %d: %s", msg.partition(),
                  msg.offset(), error)

    def _reconcile(self, answer: GatewayDecision, record: dict[str, Any]) -> None:
        self.metrics.late_decisions.inc()
        if record["action"] == answer.action:
            log.debug("late engine decision agrees: %s", answer.summary())
            return
        self.metrics.late_disagreements.labels(gateway_action=answer.action,
                                               engine_action=record["action"]).inc()
        late = LateDisagreement(answer, record)
        log.warning("late engine decision disagrees: gateway answered %s, engine says %s "
                    "(score %s, reasons %s)", answer.summary(), record["action"],
                    record.get("score"), record.get("reasons"))
        if self.on_late_disagreement is not None:
            try:
                self.on_late_disagreement(late)
            except Exception:
                self.metrics.callback_errors.inc()
                log.exception("on_late_disagreement raised for order %s", answer.order_id)

    def _sweep(self) -> None:
        for answer in self._ledger.expire():
            self.metrics.unreconciled.inc()
            log.warning("no engine decision within %gs of the gateway's answer: %s",
                        self._ledger.reconcile_s, answer.summary())
        counts = self._ledger.counts()
        self.metrics.awaiting_engine.set(counts["awaiting"])


_ACTED_ON = tuple(f for f in DECISION.fields if f.name in ("order_id", "action"))


def _usable(record: dict[str, Any]) -> None:
    """Check what the client acts on (order_id, action) against the contract's declaration.

    Every other field passes through untouched: an engine newer than this client
    may add fields, or change ones the client only carries, during a rolling upgrade.
    """
    for f in _ACTED_ON:
        if f.name not in record:
            raise RecordError("required field is missing", f.name)
        f.check(record[f.name])


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _wake_in(loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
    """Resolve an asyncio future from the decisions thread (a closed loop has nobody to wake)."""
    try:
        loop.call_soon_threadsafe(_resolve, future)
    except RuntimeError:
        pass

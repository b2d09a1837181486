"""The engine's Prometheus metrics, with the ecosystem's client library (prometheus_client).

One registry per worker (``EngineMetrics.registry``), served at ``/metrics``; it
also carries prometheus_client's process, platform and garbage-collector
collectors. Every series of ours is ``tradeguard_*``; the Grafana dashboard in
``deploy/grafana`` queries only these (a test checks it).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from prometheus_client import (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR,
                               CollectorRegistry, Counter, Gauge, Histogram, generate_latest)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from streams.topics import CONTROLS_TICKERS
from streams.vocabulary import ACTIONS

__all__ = ["CONTENT_TYPE", "EngineMetrics", "deadletter_reason"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2000, 5000, 10000)
ACTION_NAMES = ACTIONS  # metrics label values; a column code is the index

assert PROCESS_COLLECTOR and GC_COLLECTOR and PLATFORM_COLLECTOR  # the default registry's


def deadletter_reason(error: Exception) -> str:
    """A small, fixed vocabulary for the dead-letter ``reason`` label (the message has detail).

    >>> from streams.schema import RecordError
    >>> deadletter_reason(RecordError("malformed JSON: unexpected end"))
    'malformed_json'
    >>> deadletter_reason(RecordError("required field is missing", "qty"))
    'missing_field'
    >>> deadletter_reason(RecordError("event time 0 is more than 604800 s old", "ts"))
    'event_time'
    """
    label = getattr(error, "label", None)  # errors that carry their own (streams/bounds.py, ...)
    if label:
        return label
    text = str(getattr(error, "reason", error))
    if text.startswith("malformed JSON"):
        return "malformed_json"
    if "required field is missing" in text:
        return "missing_field"
    if text.startswith("event time"):
        return "event_time"
    if "tombstone" in text:
        return "no_value"
    if "JSON object" in text:
        return "not_an_object"
    return "invalid_field" if getattr(error, "field", None) else "invalid_record"


class EngineMetrics:
    """Every metric a worker exposes, on a registry of its own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.records = Counter("tradeguard_records_consumed_total",
                               "Valid input records consumed, by topic.", ["topic"], registry=r)
        self.orders = Counter("tradeguard_orders_consumed_total", "Valid orders consumed.",
                              registry=r)
        self.decisions = Counter("tradeguard_decisions_total", "Decisions published, by action.",
                                 ["action"], registry=r)
        for action in ACTION_NAMES:
            self.decisions.labels(action=action)
        self.latency = Histogram(
            "tradeguard_decision_latency_seconds",
            "Order event time to the decision's publication (wall clock).",
            buckets=LATENCY_BUCKETS, registry=r)
        self.step = Histogram("tradeguard_step_seconds",
                              "In-worker time per poll: decode, core, encode, produce.",
                              buckets=STEP_BUCKETS, registry=r)
        self.batch = Histogram("tradeguard_batch_size", "Records per poll.", ["agent"],
                               buckets=BATCH_BUCKETS, registry=r)
        self.deadletters = Counter("tradeguard_deadletter_total",
                                   "Records dead-lettered, by topic and reason.",
                                   ["topic", "reason"], registry=r)
        self.invalid = Counter("tradeguard_invalid_records_total",
                               "Input records that could not be used, by topic.", ["topic"],
                               registry=r)
        self.model = Gauge("tradeguard_model_info", "1 for the model versions deciding now.",
                           ["version"], registry=r)
        self.halts = Counter("tradeguard_halts_published_total", "halt_buys controls published.",
                             registry=r)
        self.releases = Counter("tradeguard_halt_releases_published_total",
                                "Halt releases published (expiry).", registry=r)
        self.account_controls = Counter("tradeguard_account_controls_published_total",
                                        "Account controls published, by action.", ["action"],
                                        registry=r)
        self.snapshots = Counter("tradeguard_snapshots_written_total",
                                 "Partition state snapshots written.", registry=r)
        self.snapshot_seconds = Histogram("tradeguard_snapshot_seconds",
                                          "Time to serialise one partition's snapshot.",
                                          buckets=STEP_BUCKETS, registry=r)
        self.fenced = Counter(
            "tradeguard_transactions_refused_total",
            "Transactions the group refused (this worker had lost its partitions: paused past "
            "its session, or the broker was); each is aborted and the worker rejoins.",
            registry=r)
        self.restored = Counter("tradeguard_partitions_restored_total",
                                "Partitions restored from a snapshot plus replay.", registry=r)
        self.resumed = Counter("tradeguard_partitions_resumed_total",
                               "Partitions given back to this worker after a rebalance or a "
                               "lost session and taken up with the state it held (no "
                               "restore).", registry=r)
        self.misplaced = Counter(
            "tradeguard_partitioning_violations_total",
            "Records whose key hashes (murmur2) to another partition than the one they sit "
            "on, or that have no key: a producer breaks the contract (rerouted or dead).",
            ["topic"], registry=r)
        self.rerouted = Counter(
            "tradeguard_rerouted_total",
            "Records produced with another partitioner than murmur2, re-sent by the engine "
            "to the partition their key hashes to (and decided there).", ["topic"], registry=r)
        self.refused_controls = Counter(
            "tradeguard_control_records_refused_total",
            "Control records ignored for want of a valid signature, by topic and reason.",
            ["topic", "reason"], registry=r)
        self.development_key = Gauge(
            "tradeguard_control_key_development",
            "1 while control records are signed and checked with the public development key "
            "(TRADEGUARD_CONTROL_KEY_FILE unset): anyone can forge them.", registry=r)
        self._model_version: str | None = None
        self._children: dict[tuple[int, str], Any] = {}

    def observe_step(self, records: int, decided: int, seconds: float) -> None:
        self._child(self.batch, "engine").observe(records)
        self.step.observe(seconds)

    def observe_records(self, topic: str, count: int) -> None:
        """Valid input records of ``topic`` taken by a step."""
        self._child(self.records, topic).inc(count)

    def _child(self, metric: Any, label: str) -> Any:
        """``metric.labels(label)``, looked up once: the hot path names the same few labels.

        Created on first use, as ``labels`` would, so no series appears before it counts.
        """
        key = (id(metric), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(label)
        return child

    def observe_decisions(self, block: Any, now_ms: int) -> None:
        """A DecisionBlock just published at wall time ``now_ms``."""
        n = len(block)
        if not n:
            return
        self.orders.inc(n)
        counts = np.bincount(block.action, minlength=3).tolist()
        for code, action in enumerate(ACTION_NAMES):
            if counts[code]:
                self._child(self.decisions, action).inc(counts[code])
        observe = self.latency.observe
        for value in ((now_ms - block.order_ts) / 1000.0).tolist():
            observe(value)
        version = block.model_version[-1]
        if version != self._model_version:
            if self._model_version is not None:
                self.model.remove(self._model_version)
            self.model.labels(version=version).set(1)
            self._model_version = version

    def observe_controls(self, topic: str, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            if topic == CONTROLS_TICKERS:
                (self.halts if r["action"] == "halt_buys" else self.releases).inc()
            else:
                self.account_controls.labels(action=r["action"]).inc()

    def observe_rerouted(self, topic: str, count: int) -> None:
        self.rerouted.labels(topic=topic).inc(count)
        self.misplaced.labels(topic=topic).inc(count)

    def observe_deadletter(self, topic: str, error: Exception) -> None:
        reason = deadletter_reason(error)
        self.deadletters.labels(topic=topic, reason=reason).inc()
        self.invalid.labels(topic=topic).inc()
        if reason == "wrong_partition":
            self.misplaced.labels(topic=topic).inc()

    def observe_refused_control(self, topic: str, error: Exception) -> None:
        self.refused_controls.labels(topic=topic, reason=getattr(error, "kind", "invalid")).inc()

    def observe_snapshot(self, seconds: float) -> None:
        self.snapshots.inc()
        self.snapshot_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

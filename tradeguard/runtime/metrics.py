"""Engine metrics and their Prometheus text exposition (format 0.0.4), with no client library.

The agents observe into one :class:`EngineMetrics` per worker; the web view
(``agents/web.py``) adds what it reads at scrape time (counters, the control
board, snapshot time, consumer lag) and renders everything with :func:`render`. Every series
is named ``tradeguard_*``.

>>> m = EngineMetrics()
>>> m.observe_decisions([{"order_ts": 1_000, "model_version": "rules-v1"}], now_ms=1_004)
>>> print(render(m.families()[:1]))               # doctest: +ELLIPSIS
# HELP tradeguard_decision_latency_seconds Order timestamp (gateway clock) to decision (worker clock), per order.
# TYPE tradeguard_decision_latency_seconds histogram
tradeguard_decision_latency_seconds_bucket{le="0.001"} 0
tradeguard_decision_latency_seconds_bucket{le="0.0025"} 0
tradeguard_decision_latency_seconds_bucket{le="0.005"} 1
...
tradeguard_decision_latency_seconds_bucket{le="+Inf"} 1
tradeguard_decision_latency_seconds_sum 0.004
tradeguard_decision_latency_seconds_count 1
<BLANKLINE>
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["EngineMetrics", "Histogram", "MetricFamily", "counter_families", "deadletter_reason",
           "render"]

#: Seconds; the gateway's budget is milliseconds, the tail matters up to seconds of lag.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Records per agent batch; the top bucket is the default TRADEGUARD_BATCH_MAX.
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
ACTIONS = ("allow", "hold", "block")

Labels = tuple[tuple[str, str], ...]


@dataclass
class MetricFamily:
    """One metric name with its type, help and samples ``(suffix, labels, value)``."""

    name: str
    type: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> "MetricFamily":
        self.samples.append((suffix, tuple(labels.items()), value))
        return self


class Histogram:
    """Cumulative-bucket histogram as Prometheus exposes it.

    >>> h = Histogram((1, 5))
    >>> for v in (0.5, 3, 7):
    ...     h.observe(v)
    >>> h.cumulative(), h.count, h.sum
    ([1, 2, 3], 3, 10.5)
    """

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self._counts = [0] * (len(self.bounds) + 1)  # last: above every bound (+Inf only)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[int]:
        """Counts of observations <= each bound, then the total (the ``+Inf`` bucket)."""
        out, running = [], 0
        for c in self._counts:
            running += c
            out.append(running)
        return out

    def family(self, name: str, help: str, **labels: str) -> MetricFamily:
        return self.add_to(MetricFamily(name, "histogram", help), **labels)

    def add_to(self, fam: MetricFamily, **labels: str) -> MetricFamily:
        for bound, n in zip(self.bounds + (math.inf,), self.cumulative()):
            fam.add(n, "_bucket", **labels, le=_number(bound))
        fam.add(self.sum, "_sum", **labels)
        fam.add(self.count, "_count", **labels)
        return fam


# Dead-letter reasons as a small fixed label set, from RecordError's message.
_REASONS = (
    ("malformed JSON", "malformed_json"),
    ("expected a JSON object", "not_an_object"),
    ("record has no value", "tombstone"),
    ("required field is missing", "missing_field"),
    ("expected ", "wrong_type"),
    ("must not be null", "null_value"),
    ("must be one of", "not_allowed"),
    ("must be >", "out_of_range"),
    ("must be <", "out_of_range"),
    ("longer than", "too_long"),
    ("must not be empty", "empty"),
)


def deadletter_reason(error: Exception) -> str:
    """The label for why a record was dead-lettered (bounded: never the raw message).

    >>> from streams.schema import RecordError
    >>> deadletter_reason(RecordError("expected integer, got string", "qty"))
    'wrong_type'
    >>> deadletter_reason(ValueError("something new"))
    'other'
    """
    message = getattr(error, "reason", None) or str(error)
    for prefix, reason in _REASONS:
        if message.startswith(prefix):
            return reason
    return "other"


class EngineMetrics:
    """What the agents observe per batch; read by ``/metrics``. Not thread-safe: one event loop."""

    def __init__(self) -> None:
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batches: dict[str, Histogram] = {}
        self.deadletters: Counter[tuple[str, str]] = Counter()
        self.model_version: str | None = None

    def observe_decisions(self, decisions: Iterable[Mapping[str, Any]], now_ms: int) -> None:
        """Latency from each order's own timestamp to now, and the model that decided."""
        for d in decisions:
            self.latency.observe(max(0, now_ms - d["order_ts"]) / 1000.0)
            self.model_version = d["model_version"]

    def observe_batch(self, agent: str, size: int) -> None:
        if agent not in self.batches:
            self.batches[agent] = Histogram(BATCH_BUCKETS)
        self.batches[agent].observe(size)

    def observe_deadletter(self, topic: str, error: Exception) -> None:
        self.deadletters[(topic, deadletter_reason(error))] += 1

    def families(self) -> list[MetricFamily]:
        fams = [self.latency.family(
            "tradeguard_decision_latency_seconds",
            "Order timestamp (gateway clock) to decision (worker clock), per order.")]
        batch = MetricFamily("tradeguard_batch_size", "histogram",
                             "Records per batch taken by each agent.")
        for agent, h in sorted(self.batches.items()):
            h.add_to(batch, agent=agent)
        fams.append(batch)
        dead = MetricFamily("tradeguard_deadletter_total", "counter",
                            "Records sent to the dead-letter topic, by source topic and reason.")
        for (topic, reason), n in sorted(self.deadletters.items()):
            dead.add(n, topic=topic, reason=reason)
        fams.append(dead)
        if self.model_version is not None:
            fams.append(MetricFamily("tradeguard_model_info", "gauge",
                                     "Model version of the latest decision (always 1).")
                        .add(1, version=self.model_version))
        return fams


# ctx.counters key -> (metric name, help). Keys with a ":" carry one label.
_COUNTERS = {
    "orders": ("tradeguard_orders_consumed_total", "Valid orders consumed and scored."),
    "auth_events": ("tradeguard_auth_events_consumed_total", "Valid auth events consumed."),
    "feedback": ("tradeguard_feedback_consumed_total", "Valid feedback labels consumed."),
    "trades": ("tradeguard_trades_consumed_total", "Valid market trades consumed."),
    "halts": ("tradeguard_halts_published_total", "halt_buys controls published."),
    "halt_releases": ("tradeguard_halt_releases_published_total",
                      "Expired halts released by this worker."),
}


def counter_families(counters: Mapping[str, int]) -> list[MetricFamily]:
    """The agents' plain counters (``ctx.counters``) as Prometheus counters.

    >>> fams = counter_families({"orders": 3, "decision:hold": 1, "sent:decisions": 3})
    >>> [(f.name, [(dict(l), v) for _, l, v in f.samples]) for f in fams][:2]
    [('tradeguard_orders_consumed_total', [({}, 3)]), ('tradeguard_decisions_total', [({'action': 'allow'}, 0), ({'action': 'block'}, 0), ({'action': 'hold'}, 1)])]
    """
    fams = []
    for key, (name, help) in _COUNTERS.items():
        fams.append(MetricFamily(name, "counter", help).add(counters.get(key, 0)))
    fams.insert(1, _labelled(counters, "decision", "action", ACTIONS,
                             "tradeguard_decisions_total", "Decisions published, by action."))
    fams.append(_labelled(counters, "snapshots", "kind", (), "tradeguard_snapshots_written_total",
                          "State snapshots written, by kind of partition state."))
    fams.append(_labelled(counters, "sent", "topic", (), "tradeguard_records_sent_total",
                          "Records published by the engine, by registry topic."))
    fams.append(_labelled(counters, "deadletter", "topic", (), "tradeguard_invalid_records_total",
                          "Records that failed schema validation, by registry topic "
                          "(dead-lettered, or skipped on the replicated control topics)."))
    return fams


def _labelled(counters: Mapping[str, int], prefix: str, label: str, always: Iterable[str],
              name: str, help: str) -> MetricFamily:
    values = {v: 0 for v in always}
    for key, n in counters.items():
        head, _, value = key.partition(":")
        if head == prefix and value:
            values[value] = n
    fam = MetricFamily(name, "counter", help)
    for value, n in sorted(values.items()):
        fam.add(n, **{label: value})
    return fam


def render(families: Iterable[MetricFamily]) -> str:
    """Prometheus text format 0.0.4: HELP, TYPE, then one line per sample."""
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for suffix, labels, value in fam.samples:
            lines.append(f"{fam.name}{suffix}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))

"""The gateway client's own metrics, on a Prometheus registry it owns.

Expose them from the gateway's process, e.g.
``prometheus_client.start_http_server(9100, registry=client.metrics.registry)``
or ``generate_latest(client.metrics.registry)`` in an existing HTTP handler.
Every series is named ``tradeguard_gateway_*``.

>>> m = GatewayMetrics()
>>> m.fallbacks.labels(mode="fail_open", action="allow").inc()
>>> m.registry.get_sample_value("tradeguard_gateway_fallbacks_total",
...                             {"mode": "fail_open", "action": "allow"})
1.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics", "ROUND_TRIP_BUCKETS"]

#: Seconds: a gateway's deadline is tens of milliseconds, so the buckets are fine there.
ROUND_TRIP_BUCKETS = (0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25,
                      0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    """One set per client; ``registry`` holds nothing else."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.round_trip = Histogram(
            "tradeguard_gateway_round_trip_seconds",
            "Submit to the engine's decision in hand, for orders the engine answered in time.",
            buckets=ROUND_TRIP_BUCKETS, registry=r)
        self.decisions = Counter(
            "tradeguard_gateway_decisions_total",
            "Answers returned to the gateway, by who decided and the action.",
            ["decided_by", "action"], registry=r)
        self.timeouts = Counter(
            "tradeguard_gateway_timeouts_total",
            "Orders with no engine decision by their deadline.", registry=r)
        self.fallbacks = Counter(
            "tradeguard_gateway_fallbacks_total",
            "Fallback answers after a timeout, by mode and the action given.",
            ["mode", "action"], registry=r)
        self.control_overrides = Counter(
            "tradeguard_gateway_control_overrides_total",
            "Answers set by a control held at the gateway (halt, freeze, step-up).",
            ["reason"], registry=r)
        self.late_decisions = Counter(
            "tradeguard_gateway_late_decisions_total",
            "Engine decisions that arrived after the gateway had answered.", registry=r)
        self.late_disagreements = Counter(
            "tradeguard_gateway_late_disagreements_total",
            "Late engine decisions whose action differs from the gateway's answer.",
            ["gateway_action", "engine_action"], registry=r)
        self.unreconciled = Counter(
            "tradeguard_gateway_unreconciled_total",
            "Gateway answers whose engine decision never came within the reconcile window.",
            registry=r)
        self.duplicates = Counter(
            "tradeguard_gateway_duplicate_decisions_total",
            "Repeated engine decisions for an order already answered (dropped).", registry=r)
        self.invalid_records = Counter(
            "tradeguard_gateway_invalid_records_total",
            "Decision or control records that do not match the contract (logged, not used).",
            ["topic"], registry=r)
        self.control_records = Counter(
            "tradeguard_gateway_control_records_total",
            "Control records applied to the gateway's copy of the control topics.",
            ["topic"], registry=r)
        self.produce_errors = Counter(
            "tradeguard_gateway_produce_errors_total",
            "Orders the broker did not accept (they fall back and are never reconciled).",
            registry=r)
        self.callback_errors = Counter(
            "tradeguard_gateway_callback_errors_total",
            "Exceptions raised by the late-disagreement callback (logged).", registry=r)
        self.in_flight = Gauge(
            "tradeguard_gateway_in_flight",
            "Orders submitted and waiting for an answer.", registry=r)
        self.awaiting_engine = Gauge(
            "tradeguard_gateway_awaiting_engine",
            "Gateway answers still waiting for the engine's late decision.", registry=r)
        self.controls_ready = Gauge(
            "tradeguard_gateway_controls_ready",
            "1 once the control topics have been read to their end.", registry=r)

"""Client tuning per broker: what differs between Apache Kafka and the embedded Tansu.

Connection settings (bootstrap, security, credentials) come from ``Settings``;
this module holds only what a broker's behaviour calls for. The figures behind
each value are in docs/architecture.md ("Client settings per broker").

Apache Kafka answers a fetch as soon as ``fetch.min.bytes`` (1 byte) is there, so
the fetch wait only bounds how often an idle consumer asks again; and its high
watermark in every fetch response is exact. Tansu answers a fetch only when the
wait expires and reports end offsets late: every consumer must keep the wait
short, and every hop pays it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BROKER_PROFILES", "BrokerProfile", "profile"]


@dataclass(frozen=True)
class BrokerProfile:
    """Tuning that depends on the broker, not on the deployment."""

    name: str
    #: How long a fetch may wait for data on the broker (ms).
    fetch_wait_max_ms: int
    #: How long the engine's and the gateway's producers wait to fill a batch (ms).
    linger_ms: float
    #: Whether the high watermark seen in a fetch response is exact (alignment may trust it).
    exact_high_watermark: bool
    #: A worker silent this long is taken out of the group and its partitions move: the
    #: failover time after a crash is about this plus one heartbeat and the restore.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    #: Whether the engine commits in transactions by default (processing_guarantee=auto). Off
    #: on both: on Kafka a transaction per step cost 3.7x the p50 of at least once at
    #: 1,000/s (314 against 84 ms, benchmarks/results/20261207T064225Z.md); deployments that
    #: must never publish twice (zombie workers) set exactly_once.
    transactions: bool = False


BROKER_PROFILES = {
    # Kafka returns a fetch the moment a record lands: a long wait costs no latency and
    # keeps idle consumers from spinning. linger 1 ms: at 1,000 and 5,000/s one hop's p99
    # was 11-20 ms with it against 25-49 with 0 and 14-35 with 0.5 (benchmarks/clients.py,
    # after the broker's JIT warm-up; figures in benchmarks/README.md).
    # Session 6 s, the shortest a stock broker accepts (group.min.session.timeout.ms), so
    # a worker joins any Kafka; heartbeat 0.5 s. Brokers configured with a 1 s minimum take
    # TRADEGUARD_SESSION_TIMEOUT_MS=3000: a SIGKILLed worker's partitions move within ~4 s
    # (the fault suite measures it; deploy/README.md).
    "kafka": BrokerProfile("kafka", fetch_wait_max_ms=100, linger_ms=1.0,
                           exact_high_watermark=True, session_timeout_ms=6_000,
                           heartbeat_interval_ms=500, transactions=False),
    # Tansu answers a fetch only when the wait expires: 10 ms is the floor of every hop;
    # 5 ms linger: larger batches per request cut p99 at 5,000/s from ~40 to ~13 ms.
    "tansu": BrokerProfile("tansu", fetch_wait_max_ms=10, linger_ms=5,
                           exact_high_watermark=False),
}


def profile(name: str) -> BrokerProfile:
    """The profile called ``name``; a ValueError naming the known ones otherwise."""
    try:
        return BROKER_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown broker profile {name!r}: "
                         f"one of {', '.join(sorted(BROKER_PROFILES))}") from None

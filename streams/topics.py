"""The topic registry: names, keys, partitioning, retention and schema of every topic.

This is the single place topics are defined. The engine, the CLI's
``topics create``, the Kubernetes ``KafkaTopic`` manifests and the gateway
documentation all read it.

Partitioning contract: keys are UTF-8 strings hashed with murmur2 (the Java
client's default). ``orders`` and ``auth.events`` are both keyed by account_id
and must have the same partition count, so one worker sees an account's logins
and its orders. confluent-kafka producers must set
``partitioner=murmur2_random`` to agree with Java and aiokafka producers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from streams import records
from streams.schema import RecordSchema

__all__ = ["AUDIT", "AUTH_EVENTS", "CONTROLS_ACCOUNTS", "CONTROLS_TICKERS", "DEADLETTER",
           "DECISIONS", "DECISIONS_SHADOW", "ENGINE_STEPS", "FEEDBACK", "MARKET_TRADES", "ORDERS",
           "REFERENCE_TICKERS", "STATE_SNAPSHOTS", "TICKERS_FLOW", "TICKERS_PROFILE", "TOPICS",
           "TopicSpec", "partition_for", "topic", "topic_names"]

DAY_MS = 24 * 3600 * 1000

# Every topic's registry name, to import instead of spelling it: a typo is then an ImportError,
# not a consumer that waits on a topic nobody writes. TOPICS below is built from these, and
# tests/house/test_topic_names.py holds the two to each other.
ORDERS = "orders"
AUTH_EVENTS = "auth.events"
MARKET_TRADES = "market.trades"
FEEDBACK = "feedback"
DECISIONS = "decisions"
DECISIONS_SHADOW = "decisions.shadow"
CONTROLS_TICKERS = "controls.tickers"
CONTROLS_ACCOUNTS = "controls.accounts"
DEADLETTER = "deadletter"
TICKERS_FLOW = "tickers.flow"
TICKERS_PROFILE = "tickers.profile"
STATE_SNAPSHOTS = "state.snapshots"
ENGINE_STEPS = "engine.steps"
AUDIT = "audit"
REFERENCE_TICKERS = "reference.tickers"


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is laid out on the broker and what flows through it."""

    name: str
    key: str
    schema: RecordSchema
    description: str
    producer: str
    consumers: str
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    internal: bool = False  # written and read only by the engine itself

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        """Broker-side topic config (cleanup policy and retention)."""
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ORDERS, "account_id", records.ORDER, "Orders to score, before execution.",
              producer="order gateways", consumers="engine"),
    TopicSpec(AUTH_EVENTS, "account_id", records.AUTH_EVENT,
              "Logins, failures and session events.",
              producer="identity system", consumers="engine"),
    TopicSpec(MARKET_TRADES, "ticker", records.TRADE, "Market prints.",
              producer="market data feed", consumers="engine", retention_ms=2 * DAY_MS),
    TopicSpec(FEEDBACK, "account_id", records.FEEDBACK, "Fraud/legit labels.",
              producer="analysts, simulator", consumers="engine", retention_ms=30 * DAY_MS),
    TopicSpec(DECISIONS, "account_id", records.DECISION, "One decision per order.",
              producer="engine", consumers="order gateways, analysts"),
    TopicSpec(DECISIONS_SHADOW, "account_id", records.DECISION,
              "What a candidate policy would have decided, per order (shadow mode; never "
              "enforced).", producer="engine (TRADEGUARD_SHADOW_POLICY_FILE)",
              consumers="tradeguard replay --compare-shadow, analysts"),
    TopicSpec(CONTROLS_TICKERS, "ticker", records.TICKER_CONTROL,
              "Buy halts and releases per ticker.", producer="engine, CLI",
              consumers="order gateways, engine", compacted=True),
    TopicSpec(CONTROLS_ACCOUNTS, "account_id", records.ACCOUNT_CONTROL,
              "Step-up, freeze and release per account.", producer="engine, CLI",
              consumers="order gateways, engine", compacted=True),
    TopicSpec(DEADLETTER, "source topic", records.DEADLETTER,
              "Records the engine could not use, with the reason.",
              producer="engine", consumers="operators", retention_ms=14 * DAY_MS),
    TopicSpec(TICKERS_FLOW, "ticker", records.TICKER_FLOW,
              "Orders re-keyed by ticker with their account risk.",
              producer="engine", consumers="engine", retention_ms=DAY_MS, internal=True),
    TopicSpec(TICKERS_PROFILE, "ticker", records.TICKER_PROFILE,
              "Each ticker's learned liquidity, replicated to every worker.",
              producer="engine", consumers="engine", compacted=True, internal=True),
    TopicSpec(STATE_SNAPSHOTS, "kind/partition", records.SNAPSHOT_MANIFEST,
              "Per-partition state snapshots: a JSON manifest under `kind/partition`, binary "
              "chunks under `kind/partition@slot#i`.",
              producer="engine", consumers="engine", compacted=True, internal=True),
    TopicSpec(ENGINE_STEPS, "worker", records.ENGINE_STEP,
              "Provenance of every engine step: input offsets fed to the core, replicated "
              "inputs read (docs/replay.md).", producer="engine",
              consumers="tradeguard replay", internal=True),
    TopicSpec(AUDIT, "target", records.AUDIT,
              "Operator actions in the analyst console: who, when, what, why, state before and "
              "after.", producer="console", consumers="console, compliance",
              retention_ms=5 * 365 * DAY_MS),
    TopicSpec(REFERENCE_TICKERS, "ticker", records.TICKER_REFERENCE,
              "Ticker reference data (market, listing, shares outstanding, normal daily traded "
              "value), replicated to every worker.", producer="instrument master",
              consumers="engine", compacted=True),
)

_BY_NAME = {t.name: t for t in TOPICS}


def topic(name: str) -> TopicSpec:
    """Look a topic up by its registry name (without prefix)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known: {sorted(_BY_NAME)}") from None


def topic_names(prefix: str = "") -> list[str]:
    return [t.full_name(prefix) for t in TOPICS]


@lru_cache(maxsize=1 << 18)
def partition_for(key: str, partitions: int) -> int:
    """The partition the Java client's default partitioner (murmur2) puts ``key`` in (cached:
    the hash is pure Python, and the core routes every record by it while keys repeat).

    >>> partition_for("acct-000042", 8), partition_for("7203", 8)
    (2, 5)
    """
    data = key.encode("utf-8")
    return (_murmur2(data) & 0x7FFFFFFF) % partitions


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), as org.apache.kafka.common.utils.Utils.murmur2."""
    length, m, r = len(data), 0x5BD1E995, 24
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    if tail:
        rest = data[length - tail:]
        if tail == 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h

"""One settings object for the engine, read from ``TRADEGUARD_*`` environment variables.

Every setting has a documented default, so a developer runs with none set and
an SRE sets exactly the ones that differ in a deployment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from streams import records

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Engine configuration. Field ``foo_bar`` is read from ``TRADEGUARD_FOO_BAR``."""

    #: Kafka bootstrap servers as a URL list, e.g. ``kafka://k1:9092;kafka://k2:9092``.
    broker: str = "kafka://127.0.0.1:9092"
    #: Prefix for every topic name (one cluster, several environments).
    topic_prefix: str = ""
    #: Partitions for every topic; orders and auth.events must agree (co-partitioning).
    partitions: int = 8
    #: Replication factor used by ``topics create``.
    replication_factor: int = 1
    #: Consumer group / Faust application id.
    app_id: str = "tradeguard"
    #: Port of the worker's HTTP server (health, metrics); 0 disables it.
    web_port: int = 6066
    #: Bind address of the HTTP server.
    web_host: str = "0.0.0.0"
    #: Log level for the worker.
    log_level: str = "info"
    #: Log format: ``text`` (Faust's, for a terminal) or ``json`` (one object per line).
    log_format: str = "text"
    #: Directory for snapshots and local state.
    state_dir: Path = field(default_factory=lambda: Path("./var/tradeguard"))
    #: Policy file (thresholds and weights); empty means built-in defaults.
    policy_file: str = ""
    #: A candidate policy scored beside the live one (shadow mode): its decisions go to
    #: ``decisions.shadow`` and are never enforced. Empty: no shadow.
    shadow_policy_file: str = ""
    #: Market the broker calls home; orders on any other market count as overseas.
    home_market: str = "JP"
    #: Orders the anomaly model learns per reference window (it scores 0 until the first).
    anomaly_window: int = 250
    #: Event-time seconds an account may stay idle (no login, order or failed login) before
    #: its feature state leaves the hot arrays for the partition's cold tier (packed, kept in
    #: the snapshot; readmitted unchanged when the account comes back, so no decision
    #: changes). 0 never evicts; otherwise it must exceed the one-day session TTL.
    idle_horizon_s: float = 30 * 86400.0
    #: Seconds between state snapshots per partition (bounds the replay on restart).
    snapshot_interval_s: float = 30.0
    #: Which broker the clients are tuned for: ``kafka`` (Apache Kafka, Strimzi, any broker
    #: that answers a fetch as soon as data arrives) or ``tansu`` (the embedded broker;
    #: tradeguard/kafka/profiles.py has what differs and why).
    broker_profile: str = "kafka"
    #: Longest a consumer fetch waits for data, ms; 0: the broker profile's (100 on Kafka,
    #: where a fetch returns as soon as data arrives; 10 on Tansu, where every hop pays it).
    fetch_max_wait_ms: int = 0
    #: Consumer group session timeout, ms: how long a silent worker keeps its partitions (the
    #: failover time after a crash). 0: the broker profile's (6,000 on Kafka, the shortest
    #: a stock broker accepts; 3,000 where brokers set group.min.session.timeout.ms lower).
    session_timeout_ms: int = 0
    #: Static group membership (KIP-345): a name unique to this worker and stable across its
    #: restarts (a StatefulSet pod's name). Not a remedy for broker pauses: with librdkafka
    #: 2.12 a static worker whose session lapsed was refused with a fatal error (the worker
    #: then fails liveness and is restarted; deploy/README.md). A stopped static member does
    #: not leave the group, so its partitions wait out the session before they move.
    #: Empty: dynamic membership.
    group_instance_id: str = ""
    #: The consumer group protocol: ``classic`` (JoinGroup/SyncGroup, any broker) or
    #: ``consumer`` (KIP-848, Apache Kafka 4.0 and later: the broker assigns partitions and
    #: members heartbeat their way in, with no group-wide join to lose). With ``consumer``
    #: the session and heartbeat are the broker's (group.consumer.session.timeout.ms and
    #: group.consumer.heartbeat.interval.ms, or the group's own configs), not this
    #: worker's: ``session_timeout_ms`` does not apply.
    group_protocol: str = "classic"
    #: librdkafka debug contexts for the worker's group consumer and producer (``cgrp``,
    #: ``fetch``, ``eos``, ...; librdkafka's CONFIGURATION.md): verbose, for an incident.
    kafka_debug: str = ""
    #: Longest records wait, ms, while a sibling topic of their partition (or the trades
    #: and logins of another local partition) has records on the broker this worker has not
    #: received: the alignment's bound. Past it the worker decides with what it has read,
    #: and the step's provenance (``engine.steps``) records exactly that (docs/replay.md).
    align_wait_ms: float = 5.0
    #: Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    security_protocol: str = "PLAINTEXT"
    #: SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    #: SASL password; prefer ``sasl_password_file`` in deployments.
    sasl_password: str = field(default="", repr=False)
    sasl_password_file: str = ""
    #: CA bundle for TLS to the brokers.
    ssl_cafile: str = ""
    #: Records the hot path takes from the consumer per poll at most.
    poll_max: int = 5000
    #: Seconds a command (worker start, topics create, controls) waits for a broker to
    #: answer before it stops with a clear error.
    broker_wait_s: float = 10.0
    #: Seconds between offset commits (only of records whose outputs were delivered).
    commit_interval_s: float = 0.5
    #: ``exactly_once``: each step's outputs and input offsets commit in one Kafka
    #: transaction, fenced by the consumer group's generation, so a worker resumed after
    #: its partitions moved (a zombie) publishes nothing its successor did. ``at_least_once``:
    #: outputs go out as produced, offsets commit once delivered (a crash may decide an
    #: order twice, identically). ``auto``: the broker profile's, at_least_once on both today
    #: (transactions cost 3.7x the p50 on Kafka); docs/architecture.md has the figures.
    processing_guarantee: str = "auto"
    #: Event time older than this many seconds before the worker's clock is dead-lettered;
    #: 0 accepts any age (replaying recorded days, the scorecard).
    max_event_age_s: float = 7 * 86400.0
    #: Event time more than this many seconds ahead of the worker's clock is dead-lettered.
    max_event_lead_s: float = 300.0
    #: Plausible bounds (streams/bounds.py): an order for more shares, a price (orders and
    #: trades) above, an order worth more yen, a print of more shares, or holdings worth more
    #: yen than these is dead-lettered with a reason naming the field.
    max_order_qty: int = records.PLAUSIBLE_ORDER_QTY
    max_price: float = records.PLAUSIBLE_PRICE
    max_order_notional: float = records.PLAUSIBLE_ORDER_NOTIONAL
    max_trade_qty: int = records.PLAUSIBLE_TRADE_QTY
    max_holdings_value: float = records.PLAUSIBLE_HOLDINGS_VALUE
    #: File with the shared secret that signs control records (streams/signing.py), one key
    #: per line: the first signs, every one verifies (rotation). Empty: the public
    #: development key, which protects nothing (the embedded demo and tests use it; the
    #: worker logs a warning). The engine, `tradeguard controls` and the console need it.
    control_key_file: str = ""
    #: A gateway client without ``control_key_file`` refuses to start unless this is set: it
    #: then enforces whatever anyone able to write controls.* writes (halts, freezes,
    #: releases), in arrival order. Only where Kafka ACLs alone keep those topics safe.
    trust_unsigned_controls: bool = False

    def to_env(self) -> dict[str, str]:
        """Every setting as the ``TRADEGUARD_*`` variable ``from_env`` reads back to it.

        What a child process (a worker started by the demo, a test or a benchmark) needs to
        run with exactly these settings: generated from the fields, so a new setting cannot
        be forgotten on the way (static membership once was: the fault benchmark's "static"
        worker joined as a dynamic member). The SASL password stays out (a child's
        environment is readable by the user's other processes): pass ``sasl_password_file``.
        """
        out = {}
        for f in fields(self):
            if f.name == "sasl_password":
                continue
            value = getattr(self, f.name)
            out[f"TRADEGUARD_{f.name.upper()}"] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value))
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read ``TRADEGUARD_*`` variables; explicit ``overrides`` win (e.g. from CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f"TRADEGUARD_{f.name.upper()}"
            if var in env and env[var] != "":
                values[f.name] = _coerce(var, env[var], f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.partitions < 1:
            raise SettingsError(f"TRADEGUARD_PARTITIONS must be >= 1, got {self.partitions}")
        if not 0 <= self.web_port <= 65535:
            raise SettingsError(f"TRADEGUARD_WEB_PORT must be 0..65535, got {self.web_port}")
        if self.poll_max < 1:
            raise SettingsError(f"TRADEGUARD_POLL_MAX must be >= 1, got {self.poll_max}")
        if self.idle_horizon_s < 0:
            raise SettingsError(f"TRADEGUARD_IDLE_HORIZON_S must be >= 0 (0: never evict), "
                                f"got {self.idle_horizon_s}")
        if self.align_wait_ms < 0:
            raise SettingsError(f"TRADEGUARD_ALIGN_WAIT_MS must be >= 0, got {self.align_wait_ms}")
        if self.max_event_age_s < 0 or self.max_event_lead_s < 0:
            raise SettingsError("TRADEGUARD_MAX_EVENT_AGE_S and TRADEGUARD_MAX_EVENT_LEAD_S "
                                "must be >= 0")
        for name in ("max_order_qty", "max_price", "max_order_notional", "max_trade_qty",
                     "max_holdings_value"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"TRADEGUARD_{name.upper()} must be > 0, "
                                    f"got {getattr(self, name)!r}")
        if self.control_key_file and not os.access(self.control_key_file, os.R_OK):
            raise SettingsError(f"TRADEGUARD_CONTROL_KEY_FILE: cannot read "
                                f"{self.control_key_file!r} (the key that signs control records)")
        from tradeguard.kafka.profiles import BROKER_PROFILES

        if self.broker_profile not in BROKER_PROFILES:
            raise SettingsError(f"TRADEGUARD_BROKER_PROFILE must be one of "
                                f"{', '.join(sorted(BROKER_PROFILES))}, got {self.broker_profile!r}")
        if self.processing_guarantee not in ("auto", "exactly_once", "at_least_once"):
            raise SettingsError("TRADEGUARD_PROCESSING_GUARANTEE must be auto, exactly_once or "
                                f"at_least_once, got {self.processing_guarantee!r}")
        if self.group_protocol not in ("classic", "consumer"):
            raise SettingsError(f"TRADEGUARD_GROUP_PROTOCOL must be classic or consumer, "
                                f"got {self.group_protocol!r}")
        if self.group_protocol == "consumer" and self.broker_profile != "kafka":
            raise SettingsError("TRADEGUARD_GROUP_PROTOCOL=consumer needs Apache Kafka 4.0 or "
                                "later (TRADEGUARD_BROKER_PROFILE=kafka); the embedded broker "
                                "speaks the classic protocol only")
        if self.session_timeout_ms < 0:
            raise SettingsError(f"TRADEGUARD_SESSION_TIMEOUT_MS must be >= 0, "
                                f"got {self.session_timeout_ms}")
        if self.fetch_max_wait_ms < 0:
            raise SettingsError(f"TRADEGUARD_FETCH_MAX_WAIT_MS must be >= 0, "
                                f"got {self.fetch_max_wait_ms}")
        if self.log_format not in ("text", "json"):
            raise SettingsError(
                f"TRADEGUARD_LOG_FORMAT must be text or json, got {self.log_format!r}")
        if self.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise SettingsError(
                "TRADEGUARD_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or "
                f"SASL_SSL, got {self.security_protocol!r}"
            )
        for url in self.broker_urls:
            if "://" not in url:
                raise SettingsError(
                    f"TRADEGUARD_BROKER: {url!r} is not a URL; write kafka://HOST:PORT"
                )

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    @property
    def broker_urls(self) -> list[str]:
        return [u.strip() for u in self.broker.split(";") if u.strip()]

    @property
    def bootstrap_servers(self) -> str:
        """``host:port,host:port`` for plain Kafka clients."""
        return ",".join(u.split("://", 1)[-1] for u in self.broker_urls)

    @property
    def profile(self):
        """The broker profile's client tuning (tradeguard.kafka.profiles.BrokerProfile)."""
        from tradeguard.kafka.profiles import profile

        return profile(self.broker_profile)

    @property
    def exactly_once(self) -> bool:
        """Whether the engine commits outputs and offsets in transactions (see the field)."""
        if self.processing_guarantee == "auto":
            return self.profile.transactions
        return self.processing_guarantee == "exactly_once"

    @property
    def fetch_wait_ms(self) -> int:
        """The fetch wait every consumer uses: the setting, else the broker profile's."""
        return self.fetch_max_wait_ms or self.profile.fetch_wait_max_ms

    def password(self) -> str:
        if self.sasl_password_file:
            return Path(self.sasl_password_file).read_text().strip()
        return self.sasl_password

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) connection settings, security included.

        The one place Kafka connection settings are built: every client of the
        engine, the CLI, the gateway client, the console and the tests start from it
        (the worker's Faust app runs no Kafka client of its own).
        """
        conf = {"bootstrap.servers": self.bootstrap_servers,
                "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            conf.update({"sasl.mechanism": self.sasl_mechanism,
                         "sasl.username": self.sasl_username,
                         "sasl.password": self.password()})
        if self.ssl_cafile:
            conf["ssl.ca.location"] = self.ssl_cafile
        return conf

    def topic(self, name: str) -> str:
        """Full topic name for a registry name."""
        return f"{self.topic_prefix}{name}"


def _coerce(var: str, raw: str, type_: Any) -> Any:
    type_name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "Path":
            return Path(raw)
        if type_name == "bool":
            if raw.lower() in ("1", "true", "yes"):
                return True
            if raw.lower() in ("0", "false", "no"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a valid {type_name}") from None
    return raw

"""Topic administration and reachability checks with confluent-kafka's AdminClient."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from streams.topics import TOPICS
from tradeguard.kafka import clients
from tradeguard.kafka.clients import admin as _admin
from tradeguard.kafka.errors import BrokerError
from tradeguard.runtime.settings import Settings

__all__ = ["create_topics", "wait_reachable"]


def wait_reachable(settings: Settings, timeout_s: float | None = None) -> None:
    """Raise BrokerError with the address if no broker answers within ``timeout_s``
    (default: ``settings.broker_wait_s``)."""
    timeout_s = settings.broker_wait_s if timeout_s is None else timeout_s
    try:
        _admin(settings).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerError(
            f"cannot reach the Kafka broker at {settings.bootstrap_servers} within "
            f"{timeout_s:g}s ({exc.args[0].str() if exc.args else exc}); is it running? "
            "Set --broker or TRADEGUARD_BROKER"
        ) from None


def create_topics(settings: Settings, timeout_s: float | None = None) -> dict[str, str]:
    """Create every registry topic that is missing; return name -> 'created' | 'exists'."""
    wait_reachable(settings, timeout_s)
    timeout_s = 15.0 if timeout_s is None else timeout_s  # for the creations themselves
    admin = _admin(settings)
    new = [
        NewTopic(settings.topic(t.name), num_partitions=settings.partitions,
                 replication_factor=settings.replication_factor, config=t.config())
        for t in TOPICS
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, operation_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
            outcome[name] = "created"
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                outcome[name] = "exists"
            else:
                raise BrokerError(f"could not create topic {name}: {err.str()}") from None
    _wait_led(settings, admin, list(outcome), timeout_s)
    return outcome


def _wait_led(settings: Settings, admin, names: list[str], timeout_s: float) -> None:
    """Return once every partition of ``names`` answers an offsets request from its leader.

    Kafka acknowledges a creation before the leaders have taken their partitions up (and
    before every broker's metadata names them): a client asking at once (end offsets, a
    read by time) would be told "not leader for partition". A consumer asks each
    partition's end offset, again through each such answer (``clients.end_offsets``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        meta = admin.list_topics(timeout=max(deadline - time.monotonic(), 0.5))
        pending = [n for n in names
                   if (t := meta.topics.get(n)) is None or t.error is not None
                   or not t.partitions or any(p.leader < 0 or p.error is not None
                                              for p in t.partitions.values())]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise BrokerError(f"topics {pending[:3]} have no leader {timeout_s:g}s after "
                              "their creation")
        time.sleep(0.05)
    probe = clients.reader(settings, "topics-ready")
    try:
        for name in names:
            try:
                clients.end_offsets(probe, name, sorted(meta.topics[name].partitions),
                                    max(deadline - time.monotonic(), 1.0))
            except KafkaException as exc:
                raise BrokerError(f"topic {name} is not served {timeout_s:g}s after its "
                                  f"creation: {exc}") from None
    finally:
        probe.close()

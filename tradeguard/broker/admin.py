"""Topic administration and reachability checks with confluent-kafka's AdminClient."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from streams.topics import TOPICS
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
    return outcome

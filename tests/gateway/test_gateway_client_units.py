"""The gateway client's handling of what its decisions consumer hands it, without a broker:
the end of a partition is not a problem, any other consumer error is logged; an unusable
record is counted and logged with where it sits."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from gateway_helpers import sample
from tradeguard.gateway import GatewayClient
from tradeguard.runtime.settings import Settings

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


class Message:
    """What ``Consumer.poll`` returns, as far as the client reads it."""

    def __init__(self, error: KafkaError | None = None, value: bytes = b"") -> None:
        self._error, self._value = error, value

    def error(self):
        return self._error

    def value(self):
        return self._value

    def partition(self):
        return 3

    def offset(self):
        return 42


@pytest.fixture
def client():
    # never started; no control key in a unit test of the decision path
    return GatewayClient(Settings.from_env(env={}, trust_unsigned_controls=True), mode="fail_open")


def test_the_end_of_a_partition_is_not_logged(client, caplog):
    with caplog.at_level(logging.DEBUG, "tradeguard.gateway"):
        client._absorb(Message(KafkaError(KafkaError._PARTITION_EOF)))
    assert caplog.records == []


@pytest.mark.parametrize("code", [KafkaError._TRANSPORT, KafkaError.UNKNOWN_TOPIC_OR_PART,
                                  KafkaError._ALL_BROKERS_DOWN])
def test_any_other_consumer_error_is_logged(client, caplog, code):
    with caplog.at_level(logging.WARNING, "tradeguard.gateway"):
        client._absorb(Message(KafkaError(code)))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "reading" in record.getMessage()
    assert sample(client, "tradeguard_gateway_invalid_records_total", topic="decisions") == 0


@pytest.mark.parametrize("value, why", [(b"not json", "invalid literal"), (b"[1]", "string order_id"),
                                        (b'{"order_id": 7}', "string order_id")])
def test_an_unusable_decision_is_counted_and_logged_with_its_place(client, caplog, value, why):
    with caplog.at_level(logging.ERROR, "tradeguard.gateway"):
        client._absorb(Message(value=value))
    assert sample(client, "tradeguard_gateway_invalid_records_total", topic="decisions") == 1
    (record,) = caplog.records
    assert "partition 3 offset 42" in record.getMessage() and why in record.getMessage()

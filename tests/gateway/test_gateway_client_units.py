"""The gateway client without a broker: the end of a partition is not a problem, any other
consumer error is logged; an unusable record is counted and logged with where it sits. How long
``close()`` may block and how stale the sweep of unanswered answers may get are bounded above as
well as below, on fakes and an injected clock (no wall-clock assertion)."""

from __future__ import annotations

import logging
import types

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


class Clock:
    """A monotonic clock that moves only when the fake consumer's poll waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


class IdleConsumer:
    """A decisions consumer with nothing to read: each poll waits its timeout on the clock,
    and after ``polls`` of them the client is told to stop."""

    def __init__(self, clock: Clock, client: GatewayClient, polls: int) -> None:
        self.clock, self.client, self.polls = clock, client, polls
        self.timeouts: list[float] = []

    def poll(self, timeout: float):
        self.timeouts.append(timeout)
        self.clock.now += timeout
        if len(self.timeouts) >= self.polls:
            self.client._stop.set()
        return None

    def close(self) -> None:
        pass


class Recorder:
    """Stands for the producer, the decisions thread and the controls replica: records the
    timeouts each blocking call was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.calls.append(("flush", timeout))
        return 0

    def join(self, timeout: float) -> None:
        self.calls.append(("join", timeout))

    def close(self) -> None:
        self.calls.append(("close", 0.0))


def test_the_unanswered_answers_are_swept_every_second_and_no_more_often(client, monkeypatch):
    """docs/gateway.md: the ``unreconciled`` count and the ``awaiting_engine`` gauge are at most
    a second (and one poll) behind; sweeping on every poll would cost the decisions thread."""
    clock = Clock()
    monkeypatch.setattr("tradeguard.gateway.client.time",
                        types.SimpleNamespace(monotonic=clock.monotonic, time=clock.time))
    consumer = IdleConsumer(clock, client, polls=400)
    client._consumer, client._producer = consumer, Recorder()
    swept: list[float] = []
    sweep = client._sweep
    client._sweep = lambda: (swept.append(clock.now), sweep())
    start = clock.now
    client._read_decisions()
    poll = max(consumer.timeouts)
    elapsed = clock.now - start
    assert poll <= 0.1 and elapsed >= 10  # the loop ran long enough to sweep many times
    gaps = [b - a for a, b in zip([start, *swept], swept)]
    assert gaps and all(1.0 - 1e-9 <= g <= 1.0 + poll + 1e-9 for g in gaps), gaps
    assert clock.now - swept[-1] <= 1.0 + poll + 1e-9


def test_close_blocks_at_most_its_documented_bound_and_flushes_what_is_queued(client):
    """docs/gateway.md: ``close()`` waits at most 5 s for the decisions thread and
    ``flush_timeout_s`` (5 s by default) for orders still queued, then closes both consumers."""
    thread, producer, consumer, controls = Recorder(), Recorder(), Recorder(), Recorder()
    client._thread, client._producer, client._consumer, client._controls = (thread, producer,
                                                                             consumer, controls)
    client._started = True
    client.close()
    (join,), (flush,) = [t for n, t in thread.calls], [t for n, t in producer.calls]
    assert 0 < join <= 5 and 0 < flush <= 5 and join + flush <= 10
    assert consumer.calls == [("close", 0.0)] and controls.calls == [("close", 0.0)]
    assert client._stop.is_set()
    client.close()  # idempotent: nothing waits twice
    assert len(thread.calls) == 1 and len(producer.calls) == 1
    client._started = True
    client.close(flush_timeout_s=0.5)
    assert producer.calls[-1] == ("flush", 0.5)

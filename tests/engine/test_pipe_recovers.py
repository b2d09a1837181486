"""The consumer thread outlives a broker that comes back slowly.

After a broker pause the broker fenced itself and unfenced itself; an assignment came in
the moment its partitions were still unknown, ``get_watermark_offsets`` raised "Local:
Unknown partition" out of ``_on_assign``, and the exception ended the consumer thread: the
worker decided nothing more while its liveness said all was well (benchmarks/faults.py,
stop_broker, with KIP-848 groups). Here the consumer is a recorder whose lookups fail as a
recovering broker's do.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from agents.pipe import Assigned, _asking_again
from tests.engine.pipe_on_a_loop import pipe_on_a_loop

UNKNOWN_PARTITION = KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION,
                                              "Failed to get watermark offsets"))


class _RecoveringConsumer:
    """No group offsets yet; the low watermark unknown for the first ``failures`` asks."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.asked = 0
        self.polls = 0
        self.subscribed = 0
        self.unsubscribed = 0

    def committed(self, partitions, timeout=None):
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        self.asked += 1
        if self.asked <= self.failures:
            raise UNKNOWN_PARTITION
        return 17, 90

    def commit(self, offsets=None, asynchronous=True):
        return offsets

    def poll(self, timeout=None):
        self.polls += 1
        if self.polls == 1:
            raise UNKNOWN_PARTITION  # as a rebalance callback's error comes out of poll()
        time.sleep(0.01)
        return None

    def position(self, partitions):
        return []

    def consume(self, num_messages=1, timeout=None):
        return []

    def subscribe(self, topics, **callbacks):
        self.subscribed += 1

    def unsubscribe(self):
        self.unsubscribed += 1


@pytest.fixture()
def pipe_and_handed():
    handed: list = []

    async def hand_off(item) -> None:
        handed.append(item)

    with pipe_on_a_loop(hand_off) as (pipe, orders):
        yield pipe, handed, orders, pipe.consumer


def test_an_assignment_waits_for_a_partition_the_broker_does_not_know_yet(pipe_and_handed):
    pipe, handed, orders, _ = pipe_and_handed
    consumer = _RecoveringConsumer(failures=3)
    pipe._on_assign(consumer, [TopicPartition(orders, 0)])
    assert consumer.asked == 4
    assert [type(x) for x in handed] == [Assigned]
    assert handed[0].partitions == [(orders, 0)]
    assert pipe._received[(orders, 0)] == 17  # the low watermark, once the broker knew it


def test_a_lookup_that_never_succeeds_raises_its_error_after_the_patience():
    stop, asked = threading.Event(), []

    def never():
        asked.append(1)
        raise UNKNOWN_PARTITION

    with pytest.raises(KafkaException) as caught:
        _asking_again(never, "the low watermark", stop, patience_s=0.5)
    assert caught.value.args[0].code() == KafkaError._UNKNOWN_PARTITION
    assert len(asked) >= 2  # asked again before giving up
    stop.set()  # and a stopping worker does not wait at all
    asked.clear()
    with pytest.raises(KafkaException):
        _asking_again(never, "the low watermark", stop, patience_s=60)
    assert len(asked) == 1


def test_a_failed_poll_round_rejoins_and_the_thread_goes_on(pipe_and_handed):
    pipe, _, _, real = pipe_and_handed
    consumer = _RecoveringConsumer(failures=0)
    pipe.consumer = consumer
    pipe._thread.start()
    deadline = time.monotonic() + 10
    while consumer.polls < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert consumer.polls >= 5, "the thread stopped polling after the failed round"
    assert pipe._thread.is_alive() and pipe.polling
    assert pipe.poll_failures == 1
    assert (consumer.unsubscribed, consumer.subscribed) == (1, 1)  # left and joined again


class _FatalConsumer(_RecoveringConsumer):
    """What librdkafka hands a static member fenced by its own earlier incarnation."""

    def poll(self, timeout=None):
        self.polls += 1
        if self.polls == 1:
            return _Message(KafkaError(KafkaError._FATAL, "Fatal error: Broker: Static "
                                       "consumer fenced by other consumer with same "
                                       "group.instance.id", fatal=True))
        raise KafkaException(KafkaError(KafkaError._FATAL, "Failed to remove subscription: "
                                        "Local: Fatal error", fatal=True))


class _Message:
    def __init__(self, error) -> None:
        self._error = error

    def error(self):
        return self._error


def test_a_fatal_consumer_error_fails_liveness_instead_of_looking_alive(pipe_and_handed):
    pipe, _, _, _ = pipe_and_handed
    consumer = _FatalConsumer(failures=0)
    pipe.consumer = consumer
    pipe._poll_round()  # the fatal error arrives as a message's error
    assert pipe.fatal is not None and "Static consumer fenced" in pipe.fatal
    assert not pipe.polling
    pipe._thread.start()  # and a fatal error raised out of a round is not "rejoined"
    deadline = time.monotonic() + 10
    while consumer.polls < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert consumer.polls >= 2 and pipe._thread.is_alive()
    assert (consumer.unsubscribed, consumer.subscribed) == (0, 0)
    assert not pipe.polling
